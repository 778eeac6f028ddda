// The run table: one virtualised row per run (1,000 runs scroll like 10), sortable columns, a name filter
// (substring, or /regex/), a status filter, and selection by checkboxes (shift-click selects a range;
// "all" / "none" act on the rows the filters leave).
//
// Columns: select, colour, name, status (live / stale / finished), last step, first write, last write,
// size, tags, one per hyperparameter, diagnostics. Select, colour and name stay pinned on the left when
// the table scrolls sideways; names are shown by their distinguishing part (model.labelOf), the full name
// in the tooltip. Any other column can be hidden with the column chooser (saved in localStorage); a
// hyperparameter column that is empty for every listed run is hidden until shown there.
// The filters (name, status) narrow the rows and, through `passes`, the runs the charts draw.
// Test ids: run-list (the pane), run-filter, run-filter-error, run-status-filter, run-summary, runs-all,
// runs-none, runs-collapse, runs-resize (the pane's height), run-name-resize (the name column's width), run-columns (the chooser's button; data-hidden: hidden columns),
// run-columns-menu, run-colvis-<key> (a column's checkbox), run-columns-all, run-columns-reset,
// run-col-<key> (headers), run-row-<name>, run-<name> (checkbox),
// run-badge-<name>, run-diag-<name> (the diagnostics badge: data-worst "error" | "warning" | "info" | "ok" |
// "none", data-error / data-warning / data-info: the counts; data-nodata "true": a run without scalar points); cells carry data-col=<key> (hyperparameter
// columns: "hp:<name>").

import { caret } from "./icons";
import { middleCut } from "../run_names";
import { el, formatBytes } from "./dom";
import { VirtualList } from "./virtual_list";
import type { DiagCounts, HparamValue, RunInfo, RunStatus } from "../api";
import { SEVERITY_ICON, countText, worstOf } from "./diag_panel";

/** How the run table names the kinds of training (the diagnostics' kinds). */
const KIND_LABEL: Record<string, string> = {
  supervised: "supervised",
  rl: "RL",
  lm_pretrain: "LM pre-train",
  finetune: "fine-tune",
  unknown: "—",
};

export const RUN_ROW_HEIGHT = 24;
/** Space after every cell's content (the cells carry it as padding, so pinned cells cover the gap). */
const GAP = 8;
const COLS_KEY = "tb_plus.runcols.v1";
/** Columns that cannot be hidden; the first three are pinned. */
const FIXED = new Set(["select", "color", "name"]);
const NAME_WIDTH_KEY = "tb_plus.runname.width";
const NAME_MIN = 120;
const NAME_MAX = 1200;

function loadNameWidth(): number | null {
  try {
    const v = Number(window.localStorage.getItem(NAME_WIDTH_KEY));
    return Number.isFinite(v) && v >= NAME_MIN ? Math.min(NAME_MAX, v) : null;
  } catch {
    return null;
  }
}
const AUTO_MAX_HEIGHT = 260;
const MIN_HEIGHT = 90;

export interface RunTableModel {
  runs: RunInfo[];
  hparamNames: string[];
  selected: ReadonlySet<string>;
  colorOf: (run: string) => string;
  /** A run's name as shown (default: the full name). */
  labelOf?: (run: string, maxChars?: number) => string;
  liveSeconds: number;
  staleSeconds: number | null;
  /** What the summary says when there is no run (e.g. the first index is being built). */
  emptyText?: string;
  /** A run's diagnostics counts (null: not diagnosed yet); default: the /runs column. */
  diagOf?: (r: RunInfo) => DiagCounts | null;
}

export interface RunTableHandlers {
  /** Selects (on) or deselects the named runs. */
  onSelect: (names: string[], on: boolean) => void;
  /** Shows a run's diagnostics findings (its badge was clicked). */
  onDiagnostics?: (run: string) => void;
  /** The name or status filter changed (the charts draw the selected runs that pass it). */
  onFilter?: () => void;
}

/** Column visibility chosen by the user: key -> shown; absent: the default. */
function loadColumnChoice(): Record<string, boolean> {
  try {
    const v = JSON.parse(window.localStorage.getItem(COLS_KEY) ?? "{}") as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v).filter(([, b]) => typeof b === "boolean")) as Record<string, boolean>;
  } catch {
    return {};
  }
}

function saveColumnChoice(choice: Record<string, boolean>): void {
  try {
    window.localStorage.setItem(COLS_KEY, JSON.stringify(choice));
  } catch {
    // storage blocked: the choice lasts for this page
  }
}

type Value = number | string | boolean | null;

interface Column {
  key: string;
  label: string;
  width: string;
  sortable: boolean;
  numeric?: boolean;
  /** The first click sorts descending (e.g. worst diagnostics first). */
  descFirst?: boolean;
  title?: string;
  /** Hidden unless the user shows it (an empty hyperparameter column). */
  defaultHidden?: boolean;
  value?: (r: RunInfo) => Value;
  cell: (r: RunInfo) => Node | string;
}

const STATUS_ORDER: Record<RunStatus, number> = { live: 0, stale: 1, finished: 2 };
const WORST_RANK: Record<string, number> = { error: 3, warning: 2, info: 1, ok: 0 };

/** Sort key of diagnostics counts: the worst severity first, then how many findings of it. */
export function diagRank(c: DiagCounts | null): number | null {
  if (!c) return null;
  const worst = worstOf(c);
  return WORST_RANK[worst] * 1e6 + (worst === "ok" ? 0 : Math.min(999999, c[worst]));
}

function ago(seconds: number): string {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function dateTime(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds <= 0) return "—";
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}


function hparamText(v: HparamValue | undefined): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  return String(v);
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** Order of two cell values: numbers, then booleans, then strings (naturally); null is handled by the caller. */
function compareValues(a: Exclude<Value, null>, b: Exclude<Value, null>): number {
  const rank = (v: Exclude<Value, null>): number => (typeof v === "number" ? 0 : typeof v === "boolean" ? 1 : 2);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  return collator.compare(String(a), String(b));
}

/** Sorts rows by `value` in `dir` (1 ascending, -1 descending), nulls last either way, stable. */
export function sortRuns(runs: RunInfo[], value: (r: RunInfo) => Value, dir: 1 | -1): RunInfo[] {
  const keyed = runs.map((r, i) => ({ r, i, v: value(r) }));
  keyed.sort((x, y) => {
    const xn = x.v === null || (typeof x.v === "number" && Number.isNaN(x.v));
    const yn = y.v === null || (typeof y.v === "number" && Number.isNaN(y.v));
    if (xn || yn) return xn && yn ? x.i - y.i : xn ? 1 : -1;
    return compareValues(x.v as Exclude<Value, null>, y.v as Exclude<Value, null>) * dir || x.i - y.i;
  });
  return keyed.map((k) => k.r);
}

/** The name test of a filter text: a substring (any case), or a regular expression between slashes. */
export function nameMatcher(text: string): { test: (name: string) => boolean; error: string | null } {
  const t = text.trim();
  const re = /^\/(.*)\/([a-z]*)$/.exec(t);
  if (re && t.length >= 2) {
    try {
      const rx = new RegExp(re[1], re[2]);
      return { test: (n) => rx.test(n), error: null };
    } catch (e) {
      return { test: () => true, error: e instanceof Error ? e.message : String(e) };
    }
  }
  const low = t.toLowerCase();
  return { test: (n) => !low || n.toLowerCase().includes(low), error: null };
}

export class RunTable {
  readonly root: HTMLElement;
  private readonly filter: HTMLInputElement;
  private readonly filterError: HTMLElement;
  private readonly statusFilter: HTMLSelectElement;
  private readonly summary: HTMLElement;
  private readonly header: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly list: VirtualList<RunInfo>;
  private readonly collapse: HTMLButtonElement;
  private model: RunTableModel | null = null;
  /** Every column, and those shown. */
  private allColumns: Column[] = [];
  private columns: Column[] = [];
  private columnsKey = "";
  private columnChoice: Record<string, boolean> = loadColumnChoice();
  /** The name column's width set by dragging its edge (null: at least 220 px, sharing the spare room). */
  private nameWidth: number | null = loadNameWidth();
  private readonly columnsButton: HTMLButtonElement;
  private readonly columnsMenu: HTMLElement;
  /** Names of the runs passing the filters; null: no filter set (every run passes). */
  private passing: Set<string> | null = null;
  private template = "";
  private minWidth = 0;
  private sortKey: string | null = null;
  private sortDir: 1 | -1 = 1;
  /** The rows shown: filtered and sorted. */
  private shown: RunInfo[] = [];
  /** The last row clicked without shift: one end of a shift-click range. */
  private anchor: string | null = null;
  private userHeight: number | null = null;
  private collapsed = false;

  constructor(private readonly handlers: RunTableHandlers) {
    this.filter = el("input", {
      type: "search",
      class: "tbp-filter tbp-run-filter",
      testid: "run-filter",
      placeholder: "Filter runs (text or /regex/)",
      "aria-label": "Filter runs",
    });
    this.filter.addEventListener("input", () => this.filtersChanged());
    this.filterError = el("span", { class: "tbp-error", testid: "run-filter-error", hidden: true });
    this.statusFilter = el("select", { class: "tbp-mini", testid: "run-status-filter", title: "Show runs in this state" });
    for (const [v, t] of [["", "any status"], ["live", "live"], ["stale", "stale"], ["finished", "finished"]]) {
      this.statusFilter.append(el("option", { value: v, text: t }));
    }
    this.statusFilter.addEventListener("change", () => this.filtersChanged());
    this.summary = el("span", { class: "tbp-run-summary", testid: "run-summary" });
    const all = el("button", { class: "tbp-link", testid: "runs-all", text: "all", title: "Select every run shown" });
    const none = el("button", { class: "tbp-link", testid: "runs-none", text: "none", title: "Deselect every run shown" });
    all.addEventListener("click", () => this.handlers.onSelect(this.shown.map((r) => r.name), true));
    none.addEventListener("click", () => this.handlers.onSelect(this.shown.map((r) => r.name), false));
    this.collapse = el("button", { class: "tbp-link", testid: "runs-collapse", title: "Hide or show the run table" });
    this.collapse.addEventListener("click", () => {
      this.collapsed = !this.collapsed;
      this.layoutHeight();
    });
    this.columnsButton = el("button", { class: "tbp-link", testid: "run-columns", title: "Show or hide columns", "aria-expanded": "false" });
    this.columnsMenu = el("div", { class: "tbp-columns-menu", testid: "run-columns-menu", hidden: true });
    this.columnsButton.addEventListener("click", () => {
      this.columnsMenu.hidden = !this.columnsMenu.hidden;
      this.columnsButton.setAttribute("aria-expanded", String(!this.columnsMenu.hidden));
      this.renderColumnsMenu();
    });
    const bar = el(
      "div",
      { class: "tbp-run-bar" },
      this.collapse,
      el("b", { text: "Runs" }),
      this.summary,
      all,
      none,
      this.filter,
      this.filterError,
      this.statusFilter,
      this.columnsButton,
    );
    this.header = el("div", { class: "tbp-run-row tbp-run-header", role: "row" });
    this.scroller = el("div", { class: "tbp-run-table", role: "grid" });
    this.list = new VirtualList<RunInfo>(this.scroller, {
      rowHeight: RUN_ROW_HEIGHT,
      overscan: 10,
      header: this.header,
      renderRow: (r) => this.renderRow(r),
      fallbackHeight: 300,
    });
    const resize = el("div", { class: "tbp-runs-resize", testid: "runs-resize", title: "Drag to resize the run table" });
    resize.addEventListener("pointerdown", (e) => this.startResize(e, resize));
    this.root = el("section", { class: "tbp-runs-pane", testid: "run-list" }, bar, this.columnsMenu, this.scroller, resize);
    this.layoutHeight();
  }

  /** Shows new data (a /runs answer, a selection or colour change): full render of the visible rows. */
  update(model: RunTableModel): void {
    this.model = model;
    this.buildColumns(model);
    this.recompute();
  }

  /** Whether the filters leave `name` in (the charts draw only such runs). */
  passes(name: string): boolean {
    return this.passing === null || this.passing.has(name);
  }

  /** Clears the name and status filters (another log directory's runs are coming). */
  resetFilters(): void {
    this.filter.value = "";
    this.statusFilter.value = "";
    this.anchor = null;
    this.passing = null;
    this.recompute();
  }

  private filtersChanged(): void {
    this.interactive(() => undefined);
    this.handlers.onFilter?.();
  }

  /** Runs `change`, re-filters / re-sorts and redraws, timed as tbp:table-filter. */
  private interactive(change: () => void): void {
    const t0 = performance.now();
    change();
    this.recompute();
    performance.measure("tbp:table-filter", { start: t0, end: performance.now() });
  }

  private recompute(): void {
    const m = this.model;
    if (!m) return;
    const matcher = nameMatcher(this.filter.value);
    this.filterError.hidden = matcher.error === null;
    this.filterError.textContent = matcher.error ? `bad regex: ${matcher.error}` : "";
    this.filter.classList.toggle("bad", matcher.error !== null);
    const status = this.statusFilter.value;
    const filtering = (this.filter.value.trim() !== "" && matcher.error === null) || status !== "";
    let rows = filtering ? m.runs.filter((r) => matcher.test(r.name) && (!status || r.status === status)) : m.runs.slice();
    this.passing = filtering ? new Set(rows.map((r) => r.name)) : null;
    const col = this.columns.find((c) => c.key === this.sortKey);
    if (col?.value) rows = sortRuns(rows, col.value, this.sortDir);
    this.shown = rows;
    let selected = 0;
    let drawn = 0;
    for (const r of m.runs) {
      if (!m.selected.has(r.name)) continue;
      selected++;
      if (this.passes(r.name)) drawn++;
    }
    // With a filter set, the charts draw the selected runs it leaves: say how many.
    this.summary.textContent = !m.runs.length
      ? m.emptyText ?? "No runs yet."
      : `${selected}/${m.runs.length} selected` +
        (rows.length !== m.runs.length ? ` · ${rows.length} shown` : "") +
        (drawn !== selected ? ` · ${drawn} drawn (filter)` : "");
    this.summary.dataset.selected = String(selected);
    this.summary.dataset.drawn = String(drawn);
    this.renderHeader();
    this.list.setItems(rows);
    this.layoutHeight();
  }

  private buildColumns(m: RunTableModel): void {
    // A hyperparameter column is numeric (right-aligned) when every value it has is a number.
    const numericHp = m.hparamNames.map((n) => m.runs.every((r) => r.hparams[n] === null || r.hparams[n] === undefined || typeof r.hparams[n] === "number"));
    // ... and empty when no listed run has a value for it (hidden by default).
    const emptyHp = m.hparamNames.map((n) => m.runs.every((r) => r.hparams[n] === null || r.hparams[n] === undefined || r.hparams[n] === ""));
    const key = m.hparamNames.map((n, i) => `${n}:${numericHp[i]}:${emptyHp[i]}`).join("\u0000");
    if (key === this.columnsKey && this.allColumns.length) return;
    this.columnsKey = key;
    const cols: Column[] = [
      { key: "select", label: "", width: "36px", sortable: false, cell: () => "" },
      { key: "color", label: "", width: "14px", sortable: false, cell: () => "" },
      {
        key: "name",
        label: "name",
        width: "minmax(220px, 1fr)",
        sortable: true,
        value: (r) => r.name,
        cell: (r) => (r.name === "." ? ". (logdir)" : this.model?.labelOf ? this.model.labelOf(r.name, this.nameChars()) : r.name),
      },
      {
        key: "status",
        label: "status",
        width: "72px",
        sortable: true,
        value: (r) => STATUS_ORDER[r.status],
        cell: (r) => this.badge(r),
      },
      { key: "last_step", label: "last step", width: "82px", sortable: true, numeric: true, value: (r) => r.lastStep, cell: (r) => (r.lastStep === null ? "—" : String(r.lastStep)) },
      { key: "first_write", label: "first write", width: "124px", sortable: true, numeric: true, value: (r) => r.firstWrite, cell: (r) => dateTime(r.firstWrite) },
      { key: "last_write", label: "last write", width: "88px", sortable: true, numeric: true, value: (r) => this.activity(r) || null, cell: (r) => this.lastWriteText(r) },
      { key: "size", label: "size", width: "70px", sortable: true, numeric: true, value: (r) => r.size, cell: (r) => formatBytes(r.size) },
      { key: "tags", label: "tags", width: "56px", sortable: true, numeric: true, value: (r) => r.tags, cell: (r) => r.tags.toLocaleString() },
      { key: "kind", label: "kind", width: "84px", sortable: true, value: (r) => r.kind ?? null, cell: (r) => KIND_LABEL[r.kind ?? ""] ?? r.kind ?? "—" },
      {
        key: "path",
        label: "path",
        width: "160px",
        sortable: true,
        value: (r) => r.path ?? null,
        // both ends of a path tell runs apart (root, run directory): cut it in the middle
        cell: (r) => (r.path ? middleCut(r.path, 26) : "—"),
      },
      ...m.hparamNames.map(
        (name, i): Column => ({
          key: `hp:${name}`,
          label: name,
          title: `hyperparameter ${name}`,
          width: "90px",
          sortable: true,
          defaultHidden: emptyHp[i],
          numeric: numericHp[i],
          value: (r) => r.hparams[name] ?? null,
          cell: (r) => hparamText(r.hparams[name]),
        }),
      ),
      {
        key: "diagnostics",
        label: "diagnostics",
        title: "diagnostics (worst severity first)",
        width: "100px",
        sortable: true,
        descFirst: true,
        value: (r) => diagRank(this.diagOf(r)),
        cell: (r) => this.diagBadge(r),
      },
    ];
    this.allColumns = cols;
    this.applyVisibility();
  }

  private shownColumn(c: Column): boolean {
    if (FIXED.has(c.key)) return true;
    return this.columnChoice[c.key] ?? !c.defaultHidden;
  }

  /** The columns shown, their grid template (each width plus the gap the cell pads) and the pinned offsets. */
  private applyVisibility(): void {
    const cols = this.allColumns.filter((c) => this.shownColumn(c));
    this.columns = cols;
    // Fixed widths (but the name's) so that every row, a grid of its own, lines up with the header.
    const width = (c: Column): string => (c.key === "name" && this.nameWidth !== null ? `${this.nameWidth}px` : c.width);
    this.template = cols
      .map((c) => width(c))
      .map((w) => (w.startsWith("minmax(") ? w.replace(/minmax\((\d+)px/, (_m, px) => `minmax(${Number(px) + GAP}px`) : `${parseInt(w, 10) + GAP}px`))
      .join(" ");
    this.minWidth = cols.reduce((w, c) => w + (parseInt(width(c).replace(/^minmax\(/, ""), 10) || 0) + GAP, 0) + 10;
    if (this.sortKey && !cols.some((c) => c.key === this.sortKey)) this.sortKey = null;
    const hidden = this.allColumns.length - cols.length;
    this.columnsButton.textContent = hidden ? `columns (${hidden} hidden)` : "columns";
    this.columnsButton.dataset.hidden = String(hidden);
    this.renderColumnsMenu();
  }

  /** Left offsets of the pinned cells (select, colour, name). */
  private stickyLeft(key: string): number | null {
    if (key === "select") return 0;
    if (key === "color") return 36 + GAP;
    if (key === "name") return 36 + GAP + 14 + GAP;
    return null;
  }

  private setColumn(key: string, shown: boolean | null): void {
    if (shown === null) delete this.columnChoice[key];
    else this.columnChoice[key] = shown;
    saveColumnChoice(this.columnChoice);
    this.applyVisibility();
    this.recompute();
  }

  /** The column chooser: a checkbox per column that can be hidden. */
  private renderColumnsMenu(): void {
    if (this.columnsMenu.hidden) return;
    const showAll = el("button", { class: "tbp-link", testid: "run-columns-all", text: "show all" });
    showAll.addEventListener("click", () => {
      for (const c of this.allColumns) if (!FIXED.has(c.key)) this.columnChoice[c.key] = true;
      this.setColumn("name", null);
    });
    const reset = el("button", { class: "tbp-link", testid: "run-columns-reset", text: "defaults", title: "Hide the empty hyperparameter columns again, show the rest" });
    reset.addEventListener("click", () => {
      this.columnChoice = {};
      this.setColumn("name", null);
    });
    const close = el("button", { class: "tbp-link", testid: "run-columns-close", text: "close" });
    close.addEventListener("click", () => {
      this.columnsMenu.hidden = true;
      this.columnsButton.setAttribute("aria-expanded", "false");
    });
    const items = this.allColumns
      .filter((c) => !FIXED.has(c.key))
      .map((c) => {
        const box = el("input", { type: "checkbox", testid: `run-colvis-${c.key}` });
        box.checked = this.shownColumn(c);
        box.addEventListener("change", () => this.setColumn(c.key, box.checked));
        return el(
          "label",
          { class: "tbp-columns-item", title: c.defaultHidden ? "empty for every listed run" : "" },
          box,
          c.label,
          c.defaultHidden ? el("span", { class: "tbp-muted", text: " (empty)" }) : null,
        );
      });
    this.columnsMenu.replaceChildren(el("div", { class: "tbp-columns-head" }, showAll, reset, close), el("div", { class: "tbp-columns-list" }, ...items));
  }

  private renderHeader(): void {
    this.header.style.gridTemplateColumns = this.template;
    this.header.style.minWidth = `${this.minWidth}px`;
    this.list.sizer.style.minWidth = `${this.minWidth}px`;
    this.header.replaceChildren(
      ...this.columns.map((c) => {
        const sorted = this.sortKey === c.key;
        const cell = el(
          "div",
          {
            class: `tbp-run-cell tbp-run-th${c.numeric ? " num" : ""}${c.sortable ? " sortable" : ""}`,
            testid: c.sortable ? `run-col-${c.key}` : undefined,
            title: c.sortable ? `Sort by ${c.title ?? c.label}` : c.title,
            role: "columnheader",
            "aria-sort": sorted ? (this.sortDir === 1 ? "ascending" : "descending") : undefined,
            "data-col": c.key,
          },
          c.label,
          sorted ? (this.sortDir === 1 ? " ▲" : " ▼") : "",
        );
        this.pin(cell, c.key);
        if (c.key === "name") {
          const grip = el("div", { class: "tbp-col-resize", testid: "run-name-resize", title: "Drag to widen or narrow the name column" });
          grip.addEventListener("click", (e) => e.stopPropagation());
          grip.addEventListener("pointerdown", (e) => this.startNameResize(e, grip, cell));
          cell.append(grip);
        }
        if (c.sortable) {
          cell.addEventListener("click", () =>
            this.interactive(() => {
              if (this.sortKey === c.key) this.sortDir = this.sortDir === 1 ? -1 : 1;
              else {
                this.sortKey = c.key;
                this.sortDir = c.descFirst ? -1 : 1;
              }
            }),
          );
        }
        return cell;
      }),
    );
  }

  /** When the run was last written: the file's modification time, or its newest event's wall time when the
   * file was modified long after it (logs copied or touched later: the server's rule for the status too). */
  private activity(r: RunInfo): number {
    const stale = this.model?.staleSeconds ?? 1800;
    return r.lastEvent !== null && r.lastWrite - r.lastEvent >= stale ? r.lastEvent : r.lastWrite;
  }

  private lastWriteText(r: RunInfo): string {
    if (!r.lastWrite) return "—";
    const t = this.activity(r);
    return t === r.lastWrite ? ago(Date.now() / 1000 - t) : dateTime(t);
  }

  private badge(r: RunInfo): HTMLElement {
    const m = this.model;
    const live = m ? m.liveSeconds : 60;
    const stale = m?.staleSeconds;
    const title =
      r.status === "live"
        ? `written within the last ${live} s`
        : r.status === "stale"
          ? `no write for over ${live} s${stale ? `, but within ${stale} s: finished, crashed or hung` : ""}`
          : `no write for ${stale ? `over ${stale} s` : "a while"}`;
    return el("span", { class: `tbp-badge ${r.status}`, testid: `run-badge-${r.name}`, text: r.status, title });
  }

  private diagOf(r: RunInfo): DiagCounts | null {
    const m = this.model;
    return m?.diagOf ? m.diagOf(r) : r.diagnostics;
  }

  /** The diagnostics cell: a badge of the worst severity ("2 errors", "1 warning", "info", "ok"), "—"
   * while not diagnosed, "no data" for a run without scalar points; a click shows the run's findings. */
  private diagBadge(r: RunInfo): HTMLElement {
    const c = this.diagOf(r);
    const testid = `run-diag-${r.name}`;
    // A run without scalar points has nothing to be "ok" about: a neutral "no data" (findings, if any, still show).
    const noData = r.tags === 0 || r.lastStep === null;
    if (noData && (!c || worstOf(c) === "ok")) {
      return el("span", { class: "tbp-muted tbp-diag-nodata", testid, "data-worst": "none", "data-nodata": "true", text: "no data", title: "no scalar points to diagnose" });
    }
    if (!c) return el("span", { class: "tbp-muted", testid, "data-worst": "none", text: "—", title: "not diagnosed yet" });
    const worst = worstOf(c);
    const text = worst === "ok" ? "ok" : worst === "info" ? "info" : `${SEVERITY_ICON[worst]} ${countText(c[worst], worst)}`;
    const counts = `${countText(c.error, "error")} · ${countText(c.warning, "warning")} · ${countText(c.info, "info")}`;
    const badge = el("button", {
      class: `tbp-diag-badge ${worst}`,
      testid,
      text,
      title: `${counts}\nClick to show the findings of ${r.name}`,
      "data-worst": worst,
      "data-error": c.error,
      "data-warning": c.warning,
      "data-info": c.info,
    });
    badge.addEventListener("click", (e) => {
      e.stopPropagation();
      this.handlers.onDiagnostics?.(r.name);
    });
    return badge;
  }

  private renderRow(r: RunInfo): HTMLElement {
    const m = this.model!;
    const selected = m.selected.has(r.name);
    const cells = this.columns.map((c) => {
      const cell = el("div", { class: `tbp-run-cell${c.numeric ? " num" : ""}`, "data-col": c.key });
      this.pin(cell, c.key);
      if (c.key === "select") {
        const box = el("input", { type: "checkbox", testid: `run-${r.name}`, "aria-label": `select ${r.name}` });
        box.checked = selected;
        box.addEventListener("click", (e) => this.onCheck(r.name, box.checked, e.shiftKey));
        cell.append(box);
      } else if (c.key === "color") {
        const swatch = el("span", { class: "tbp-swatch" });
        swatch.style.background = m.colorOf(r.name);
        cell.append(swatch);
      } else {
        const content = c.cell(r);
        cell.append(content);
        if (typeof content === "string" && c.key !== "name") cell.title = content;
        if (c.key === "name") {
          cell.title = r.path ? `${r.name}\n${r.path}` : r.name;
          cell.addEventListener("click", (e) => this.onCheck(r.name, !m.selected.has(r.name), e.shiftKey));
        }
      }
      return cell;
    });
    const row = el(
      "div",
      {
        class: `tbp-run-row${selected ? " selected" : ""}`,
        testid: `run-row-${r.name}`,
        role: "row",
        "data-run": r.name,
        "aria-selected": String(selected),
      },
      ...cells,
    );
    row.style.gridTemplateColumns = this.template;
    return row;
  }

  /** Characters a name may have in the name column (a dragged width; else the default's, 48). */
  private nameChars(): number | undefined {
    return this.nameWidth === null ? undefined : Math.max(12, Math.floor(this.nameWidth / 6.6));
  }

  /** Drags the name column's right edge: wider or narrower (NAME_MIN .. NAME_MAX px), kept in localStorage. */
  private startNameResize(e: PointerEvent, grip: HTMLElement, cell: HTMLElement): void {
    e.preventDefault();
    e.stopPropagation();
    const startX = e.clientX;
    const startW = cell.getBoundingClientRect().width - GAP;
    grip.setPointerCapture(e.pointerId);
    const move = (ev: PointerEvent): void => {
      this.nameWidth = Math.round(Math.min(NAME_MAX, Math.max(NAME_MIN, startW + ev.clientX - startX)));
      this.applyVisibility();
      this.header.style.gridTemplateColumns = this.template;
      this.header.style.minWidth = `${this.minWidth}px`;
      this.list.sizer.style.minWidth = `${this.minWidth}px`;
      for (const row of this.list.sizer.children) (row as HTMLElement).style.gridTemplateColumns = this.template;
    };
    const up = (): void => {
      grip.removeEventListener("pointermove", move);
      grip.removeEventListener("pointerup", up);
      this.list.refresh(); // names cut to the new width
      try {
        if (this.nameWidth !== null) window.localStorage.setItem(NAME_WIDTH_KEY, String(this.nameWidth));
      } catch {
        // storage blocked
      }
    };
    grip.addEventListener("pointermove", move);
    grip.addEventListener("pointerup", up);
  }

  /** Pins the select, colour and name cells to the left edge when the table scrolls sideways. */
  private pin(cell: HTMLElement, key: string): void {
    const left = this.stickyLeft(key);
    if (left === null) return;
    cell.classList.add("tbp-pinned-cell");
    if (key === "name") cell.classList.add("tbp-pinned-last");
    cell.style.left = `${left}px`;
  }

  /** A checkbox click: the run alone, or with shift the range from the last clicked run (rows as shown). */
  private onCheck(name: string, on: boolean, shift: boolean): void {
    if (shift && this.anchor !== null) {
      const a = this.shown.findIndex((r) => r.name === this.anchor);
      const b = this.shown.findIndex((r) => r.name === name);
      if (a >= 0 && b >= 0) {
        const [lo, hi] = a < b ? [a, b] : [b, a];
        this.handlers.onSelect(this.shown.slice(lo, hi + 1).map((r) => r.name), on);
        return;
      }
    }
    this.anchor = name;
    this.handlers.onSelect([name], on);
  }

  /** The pane's height: the user's (dragged) one, else just enough for the rows up to a limit. */
  private layoutHeight(): void {
    this.collapse.replaceChildren(caret(!this.collapsed));
    this.collapse.setAttribute("aria-expanded", String(!this.collapsed));
    this.root.classList.toggle("collapsed", this.collapsed);
    if (this.collapsed) {
      this.root.style.height = "";
      return;
    }
    const n = this.model?.runs.length ?? 0;
    const auto = Math.min(AUTO_MAX_HEIGHT, 34 + RUN_ROW_HEIGHT * (Math.max(1, n) + 1) + 14);
    this.root.style.height = `${this.userHeight ?? auto}px`;
  }

  private startResize(e: PointerEvent, handle: HTMLElement): void {
    e.preventDefault();
    const startY = e.clientY;
    const startH = this.root.getBoundingClientRect().height;
    handle.setPointerCapture(e.pointerId);
    const move = (ev: PointerEvent): void => {
      // The room is the main pane's (the host around the table is only as tall as the table itself).
      const main = this.root.closest("main") ?? this.root.parentElement?.parentElement;
      const max = Math.max(MIN_HEIGHT, (main?.clientHeight || window.innerHeight) - 80);
      this.userHeight = Math.round(Math.min(max, Math.max(MIN_HEIGHT, startH + ev.clientY - startY)));
      this.collapsed = false;
      this.layoutHeight();
    };
    const up = (): void => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
  }
}
