// Small inline SVG icons: glyphs such as a pushpin, a fullwidth plus or small triangles are missing from
// many systems' fonts (they render as empty boxes), so the UI draws them itself. Icons take the text
// colour (currentColor) and scale with the font (1em).

const NS = "http://www.w3.org/2000/svg";

const PATHS: Record<string, string> = {
  // a pushpin: head, body, needle
  pin: "M5 1.5h6v1.5l-1 .5v3.5l2.5 2.5v1H8.6L8 15l-.6-4.5H3.5v-1L6 7V3.5l-1-.5z",
  "caret-right": "M6 3.5l5 4.5-5 4.5z",
  "caret-down": "M3.5 6h9L8 11z",
  close: "M4 3l4 4 4-4 1 1-4 4 4 4-1 1-4-4-4 4-1-1 4-4-4-4z",
  reload: "M8 2.5a5.5 5.5 0 1 0 5.2 7.3l-1.4-.5A4 4 0 1 1 8 4c1.1 0 2.1.45 2.8 1.2L9 7h4.5V2.5l-1.6 1.6A5.5 5.5 0 0 0 8 2.5z",
  upload: "M8 1.5l4.5 4.5h-3v5h-3v-5h-3zM2.5 12.5h11v2h-11z",
  "box-on": "M2.5 2.5h11v11h-11zM4 8.3l1-1 2 2 4-4.3 1 1-5 5.3z",
  // four corners out (enlarge) and in (restore)
  enlarge: "M2 2h4.5v1.5h-3v3H2zM9.5 2H14v4.5h-1.5v-3h-3zM2 9.5h1.5v3h3V14H2zM12.5 9.5H14V14H9.5v-1.5h3z",
  restore: "M5 2h1.5v4.5H2V5h3zM9.5 2H11v3h3v1.5H9.5zM2 9.5h4.5V14H5v-3H2zM9.5 9.5H14V11h-3v3H9.5z",
  "box-off": "M2.5 2.5h11v11h-11zM3.7 3.7v8.6h8.6V3.7z",
};

export type IconName = keyof typeof PATHS;

/** An inline SVG icon (aria-hidden; give the button its own label or title). */
export function icon(name: string, cls = ""): SVGSVGElement {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "1em");
  svg.setAttribute("height", "1em");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `tbp-icon${cls ? ` ${cls}` : ""}`);
  svg.dataset.icon = name;
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", PATHS[name] ?? "");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("fill-rule", "evenodd");
  svg.appendChild(path);
  return svg;
}

/** A disclosure caret: down when open, right when closed. */
export function caret(open: boolean): SVGSVGElement {
  return icon(open ? "caret-down" : "caret-right");
}
