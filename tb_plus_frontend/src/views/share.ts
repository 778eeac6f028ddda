// "Link": the URL of the view as it is now, copied to the clipboard where the page may, and shown selected
// in a box in any case (another site's iframe may not write the clipboard: Ctrl+C then copies it).

import { el } from "./dom";

export function createShareLink(linkOf: () => string): HTMLElement {
  const button = el("button", { class: "tbp-button", testid: "share-link", title: "Copy a link to this view", text: "Link" });
  const input = el("input", { class: "tbp-share-url", testid: "share-url", readonly: true, "aria-label": "link to this view" });
  const note = el("span", { class: "tbp-share-note", testid: "share-note" });
  const box = el("div", { class: "tbp-share-box", testid: "share-box", hidden: true }, input, note);
  const root = el("span", { class: "tbp-share" }, button, box);
  const close = (e: Event): void => {
    if (!root.contains(e.target as Node)) box.hidden = true;
  };
  button.addEventListener("click", () => {
    if (!box.hidden) {
      box.hidden = true;
      return;
    }
    const url = linkOf();
    input.value = url;
    box.hidden = false;
    input.focus();
    input.select();
    note.textContent = "Ctrl+C to copy";
    const clip = navigator.clipboard;
    if (clip && window.isSecureContext) {
      clip.writeText(url).then(
        () => (note.textContent = "copied"),
        () => undefined, // not allowed here (e.g. another site's iframe): the selected box stays
      );
    }
  });
  document.addEventListener("mousedown", close);
  return root;
}
