// The controls bar above the charts: x axis, log scales, smoothing, refresh interval, highlight by
// dimension (with the colour legend of its values), pinned indicators, and the builders of custom,
// aggregation and comparison charts. Built once; `update` refreshes what it shows.

import { el } from "./dom";
import { REFRESH_CHOICES, type AggSpec, type CmpSpec, type CustomSpec, type ViewState } from "../state";

export interface ControlsModel {
  state: ViewState;
  xTags: string[];
  runs: string[];
  /** A run's name as shown (its distinguishing part); default: the full name. */
  runLabel?: (run: string) => string;
  tags: string[];
  hparamNames: string[];
  /** Values of the chosen dimension with their colours (the colour legend). */
  dimValues: { value: string; color: string }[];
}

export interface ControlsHandlers {
  onChange: (patch: Partial<ViewState>) => void;
  onAddCustom: (spec: Omit<CustomSpec, "id">) => void;
  onAddAgg: (spec: Omit<AggSpec, "id">) => void;
  onAddCmp: (spec: Omit<CmpSpec, "id">) => void;
}

export interface Controls {
  root: HTMLElement;
  update: (m: ControlsModel) => void;
}

const DIM_KINDS: [string, string, string][] = [
  ["", "none", ""],
  ["run_regex", "run name regex", "regex, e.g. lr=([^_/]+)"],
  ["run_split", "run name part", "index of '/'-split, e.g. 0"],
  ["tag_level", "tag level", "level of the tag path, e.g. 0"],
  ["hparam", "hyperparameter", "name, e.g. lr"],
];

function splitDim(dim: string): [string, string] {
  const i = dim.indexOf(":");
  return i < 0 ? [dim, ""] : [dim.slice(0, i), dim.slice(i + 1)];
}

/** Every option of a select with a filter box, and the filter's text. */
const filtered = new WeakMap<HTMLSelectElement, { items: [string, string][]; query: string }>();

/** Fills a select with `items` (value, text); a select with a filter box lists those whose text or value
 * holds the filter's text (any case), and always the current choice (`keep`, default its value). */
function options(select: HTMLSelectElement, items: [string, string][], keep = select.value): void {
  const f = filtered.get(select);
  let shown = items;
  if (f) {
    f.items = items;
    const q = f.query.trim().toLowerCase();
    if (q) shown = items.filter(([v, t]) => v === keep || t.toLowerCase().includes(q) || v.toLowerCase().includes(q));
  }
  const key = shown.map(([v, t]) => `${v}\u0000${t}`).join("\n");
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  select.replaceChildren(...shown.map(([v, t]) => el("option", { value: v, text: t })));
  if (shown.some(([v]) => v === keep)) select.value = keep;
}

/** A filter box for a long select (tags): typing narrows its options; the current choice stays. */
function filterBox(select: HTMLSelectElement, testid: string): HTMLInputElement {
  filtered.set(select, { items: [], query: "" });
  const input = el("input", {
    type: "search",
    class: "tbp-text tbp-select-filter",
    testid,
    placeholder: "filter",
    title: "Narrow the list to names holding this text (any case)",
  });
  input.addEventListener("input", () => {
    const f = filtered.get(select)!;
    f.query = input.value;
    options(select, f.items);
    const q = f.query.trim().toLowerCase();
    input.classList.toggle("bad", !!q && !f.items.some(([v, t]) => t.toLowerCase().includes(q) || v.toLowerCase().includes(q)));
  });
  return input;
}

function labelled(text: string, ...children: HTMLElement[]): HTMLElement {
  return el("span", { class: "tbp-ctl" }, el("span", { class: "tbp-ctl-label", text }), ...children);
}

export function createControls(handlers: ControlsHandlers): Controls {
  const change = handlers.onChange;
  let model: ControlsModel | null = null;
  let lastDim: string | null = null;

  // Axes
  const xSel = el("select", { testid: "x-axis", title: "x axis of every chart (a chart may override it)" });
  xSel.addEventListener("change", () => change({ x: xSel.value }));
  const xFilter = filterBox(xSel, "x-axis-filter");
  const xlog = el("input", { type: "checkbox", testid: "xlog" });
  xlog.addEventListener("change", () => change({ xlog: xlog.checked }));
  const dover = el("input", { type: "checkbox", testid: "diag-overlays", title: "Mark diagnostics findings on the charts (per run, in its colour)" });
  dover.addEventListener("change", () => change({ dover: dover.checked }));
  const ylog = el("input", { type: "checkbox", testid: "ylog" });
  ylog.addEventListener("change", () => change({ ylog: ylog.checked }));
  const outliers = el("input", {
    type: "checkbox",
    testid: "outliers",
    title: "Fit y axes to the bulk of the values: points outside are clipped and marked at the plot's edge (a chart may override it)",
  });
  outliers.addEventListener("change", () => change({ outliers: outliers.checked }));

  // Smoothing
  const smoothSel = el("select", { testid: "smooth-kind" });
  options(smoothSel, [["none", "none"], ["ema", "EMA"], ["median", "median"]]);
  smoothSel.addEventListener("change", () => change({ smooth: smoothSel.value as ViewState["smooth"] }));
  const weight = el("input", { type: "range", min: 0, max: 0.999, step: 0.001, testid: "ema-weight", title: "EMA weight" });
  const weightText = el("span", { class: "tbp-ctl-value", testid: "ema-weight-value" });
  let weightTimer = 0;
  weight.addEventListener("input", () => {
    weightText.textContent = Number(weight.value).toFixed(3);
    window.clearTimeout(weightTimer);
    weightTimer = window.setTimeout(() => change({ weight: Number(weight.value), smooth: "ema" }), 150);
  });
  const win = el("input", { type: "number", min: 1, step: 2, testid: "median-window", title: "median window (odd)", class: "tbp-num" });
  win.addEventListener("change", () => {
    let v = Math.max(1, Math.round(Number(win.value) || 1));
    if (v % 2 === 0) v += 1;
    change({ window: v, smooth: "median" });
  });

  // Refresh
  const refresh = el("select", { testid: "refresh", title: "How often to look for new data" });
  options(refresh, REFRESH_CHOICES.map(([v, t]) => [String(v), t]));
  refresh.addEventListener("change", () => change({ refresh: Number(refresh.value) }));

  // Highlight by dimension
  const dimKind = el("select", { testid: "dim-kind", title: "Colour and highlight series by" });
  options(dimKind, DIM_KINDS.map(([v, t]) => [v, t]));
  const dimArg = el("input", { type: "text", testid: "dim-arg", class: "tbp-text", list: "tbp-hparam-names" });
  const hparamList = el("datalist", { id: "tbp-hparam-names" });
  const applyDim = (): void => {
    const kind = dimKind.value;
    const arg = dimArg.value.trim();
    change({ dim: kind ? `${kind}:${arg}` : "", hl: null });
  };
  dimKind.addEventListener("change", () => {
    dimArg.hidden = !dimKind.value;
    dimArg.placeholder = DIM_KINDS.find(([v]) => v === dimKind.value)?.[2] ?? "";
    if (!dimKind.value || dimArg.value.trim()) applyDim();
  });
  dimArg.addEventListener("change", applyDim);
  const hlSel = el("select", { testid: "hl-value", title: "Emphasise the series with this value" });
  hlSel.addEventListener("change", () => change({ hl: hlSel.value === "\u0000" ? null : hlSel.value }));
  const dimLegend = el("div", { class: "tbp-dim-legend", testid: "dim-legend" });

  // Pins
  const pinInput = el("input", { type: "text", testid: "pin-input", class: "tbp-text", placeholder: "tag or glob, e.g. */loss" });
  const pinAdd = el("button", { class: "tbp-button tbp-small", testid: "pin-add", text: "pin" });
  const addPin = (): void => {
    const v = pinInput.value.trim();
    if (!v || !model || model.state.pins.includes(v)) return;
    pinInput.value = "";
    change({ pins: [...model.state.pins, v] });
  };
  pinAdd.addEventListener("click", addPin);
  pinInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") addPin();
  });
  const pinList = el("span", { class: "tbp-pins", testid: "pins" });

  // Builders
  const cRun = el("select", { testid: "custom-run" });
  const cTag = el("select", { testid: "custom-tag" });
  const cTagFilter = filterBox(cTag, "custom-tag-filter");
  const cAdd = el("button", { class: "tbp-button tbp-small", testid: "custom-add", text: "add series" });
  const cList = el("span", { class: "tbp-pairs", testid: "custom-pairs" });
  const cTitle = el("input", { type: "text", class: "tbp-text", testid: "custom-title", placeholder: "title (optional)" });
  const cCreate = el("button", { class: "tbp-button tbp-small", testid: "custom-create", text: "create chart" });
  let pairs: [string, string][] = [];
  const showPairs = (): void => {
    cList.replaceChildren(
      ...pairs.map((p, i) => {
        const x = el("button", { class: "tbp-link", text: "×" });
        x.addEventListener("click", () => {
          pairs.splice(i, 1);
          showPairs();
        });
        return el("span", { class: "tbp-chip" }, `${p[0]}:${p[1]}`, x);
      }),
    );
  };
  cAdd.addEventListener("click", () => {
    if (!cRun.value || !cTag.value) return;
    pairs.push([cRun.value, cTag.value]);
    showPairs();
  });
  cCreate.addEventListener("click", () => {
    if (!pairs.length && cRun.value && cTag.value) pairs.push([cRun.value, cTag.value]);
    if (!pairs.length) return;
    handlers.onAddCustom({ title: cTitle.value.trim(), series: pairs });
    pairs = [];
    cTitle.value = "";
    showPairs();
  });

  const aTags = el("input", { type: "text", class: "tbp-text", testid: "agg-tags", placeholder: "tags or globs, comma-separated" });
  const aGroup = el("select", { testid: "agg-group-kind" });
  options(aGroup, [["none", "no grouping"], ["run_regex", "run regex"], ["tag_level", "tag level"], ["hparam", "hyperparameter"]]);
  const aArg = el("input", { type: "text", class: "tbp-text", testid: "agg-group-arg", placeholder: "regex / level / name", list: "tbp-hparam-names" });
  const aStat = el("select", { testid: "agg-stat" });
  options(aStat, [["mean", "mean"], ["median", "median"]]);
  const aBand = el("select", { testid: "agg-band" });
  options(aBand, [["minmax", "min-max"], ["std", "± std"], ["ci95", "95% CI"], ["none", "no band"]]);
  const aCreate = el("button", { class: "tbp-button tbp-small", testid: "agg-create", text: "create chart" });
  aCreate.addEventListener("click", () => {
    const tags = aTags.value.split(",").map((t) => t.trim()).filter((t) => t);
    if (!tags.length) return;
    const g = aGroup.value;
    handlers.onAddAgg({
      tags,
      groupBy: g === "none" ? "none" : `${g}:${aArg.value.trim()}`,
      stat: aStat.value as AggSpec["stat"],
      band: aBand.value as AggSpec["band"],
    });
  });

  const mARun = el("select", { testid: "cmp-a-run" });
  const mATag = el("select", { testid: "cmp-a-tag" });
  const mBRun = el("select", { testid: "cmp-b-run" });
  const mBTag = el("select", { testid: "cmp-b-tag" });
  const mATagFilter = filterBox(mATag, "cmp-a-tag-filter");
  const mBTagFilter = filterBox(mBTag, "cmp-b-tag-filter");
  const mOp = el("select", { testid: "cmp-op" });
  options(mOp, [["diff", "A − B"], ["ratio", "A / B"]]);
  const mCreate = el("button", { class: "tbp-button tbp-small", testid: "cmp-create", text: "create chart" });
  mCreate.addEventListener("click", () => {
    if (!mARun.value || !mATag.value || !mBRun.value || !mBTag.value) return;
    handlers.onAddCmp({ a: [mARun.value, mATag.value], b: [mBRun.value, mBTag.value], op: mOp.value as CmpSpec["op"] });
  });

  const builders = el(
    "details",
    { class: "tbp-builders", testid: "builders" },
    el("summary", { text: "+ chart" }),
    el("div", { class: "tbp-builder" }, el("b", { text: "Custom" }), cRun, cTagFilter, cTag, cAdd, cList, cTitle, cCreate),
    el("div", { class: "tbp-builder" }, el("b", { text: "Aggregate" }), aTags, aGroup, aArg, aStat, aBand, aCreate),
    el("div", { class: "tbp-builder" }, el("b", { text: "Compare" }), "A", mARun, mATagFilter, mATag, "B", mBRun, mBTagFilter, mBTag, mOp, mCreate),
  );

  const root = el(
    "div",
    { class: "tbp-controls", testid: "controls" },
    el(
      "div",
      { class: "tbp-ctl-row" },
      labelled("x", xFilter, xSel),
      labelled("log x", xlog),
      labelled("log y", ylog),
      labelled("ignore outliers", outliers),
      labelled("smooth", smoothSel, weight, weightText, win),
      labelled("refresh", refresh),
    ),
    el(
      "div",
      { class: "tbp-ctl-row" },
      labelled("colour by", dimKind, dimArg, hparamList),
      labelled("highlight", hlSel),
      labelled("findings on charts", dover),
      dimLegend,
    ),
    el("div", { class: "tbp-ctl-row" }, labelled("pins", pinInput, pinAdd), pinList, builders),
  );

  function update(m: ControlsModel): void {
    model = m;
    const s = m.state;
    const xChoices = ["step", "relative", "wall_time", ...m.xTags.map((t) => `tag:${t}`)];
    if (!xChoices.includes(s.x)) xChoices.push(s.x);
    options(xSel, xChoices.map((c) => [c, c === "wall_time" ? "wall time" : c === "relative" ? "relative (s)" : c.replace(/^tag:/, "tag: ")]), s.x);
    xSel.value = s.x;
    xlog.checked = s.xlog;
    ylog.checked = s.ylog;
    dover.checked = s.dover;
    outliers.checked = s.outliers;
    smoothSel.value = s.smooth;
    if (document.activeElement !== weight) weight.value = String(s.weight);
    weightText.textContent = s.weight.toFixed(3);
    weight.hidden = weightText.hidden = s.smooth !== "ema";
    if (document.activeElement !== win) win.value = String(s.window);
    win.hidden = s.smooth !== "median";
    refresh.value = String(s.refresh);

    const [kind, arg] = splitDim(s.dim);
    if (s.dim !== lastDim) {
      // Only a new state overwrites the inputs: a kind chosen but not yet given its argument stays.
      lastDim = s.dim;
      dimKind.value = kind;
      if (document.activeElement !== dimArg) dimArg.value = arg;
      dimArg.hidden = !kind;
      dimArg.placeholder = DIM_KINDS.find(([v]) => v === kind)?.[2] ?? "";
    }
    hparamList.replaceChildren(...m.hparamNames.map((n) => el("option", { value: n })));
    options(hlSel, [["\u0000", "— none —"], ...m.dimValues.map((v): [string, string] => [v.value, v.value])]);
    hlSel.value = s.hl ?? "\u0000";
    hlSel.disabled = !kind;
    dimLegend.replaceChildren(
      ...m.dimValues.map((v) => {
        const b = el(
          "button",
          { class: `tbp-dim-value${s.hl === v.value ? " on" : ""}`, testid: `dim-value-${v.value}`, title: "highlight" },
          el("span", { class: "tbp-swatch" }),
          v.value,
        );
        (b.firstChild as HTMLElement).style.background = v.color;
        b.addEventListener("click", () => change({ hl: s.hl === v.value ? null : v.value }));
        return b;
      }),
    );

    pinList.replaceChildren(
      ...s.pins.map((p) => {
        const x = el("button", { class: "tbp-link", text: "×", title: `unpin ${p}`, testid: `unpin-${p}` });
        x.addEventListener("click", () => change({ pins: s.pins.filter((q) => q !== p) }));
        return el("span", { class: "tbp-chip", testid: `pin-${p}` }, p, x);
      }),
    );

    const runOpts = m.runs.map((r): [string, string] => [r, m.runLabel ? m.runLabel(r) : r]);
    const tagOpts = m.tags.map((t): [string, string] => [t, t]);
    for (const sel of [cRun, mARun, mBRun]) options(sel, runOpts);
    for (const sel of [cTag, mATag, mBTag]) options(sel, tagOpts);
  }

  return { root, update };
}
