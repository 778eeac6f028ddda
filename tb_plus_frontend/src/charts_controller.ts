// The chart area: the controls bar (views/controls.ts), the chart cards (chart_card.ts) of the open tags,
// the Pinned section and the built charts (custom, aggregation, comparison), and the bar above them.
//
// - renderCards makes the grids hold one card per chart spec, in order, reusing the cards that stay (a
//   card keeps its fetched series); updateCards reloads them when runs grew or the selection changed.
// - Each card's options (scales, zoom) live in the view state: `tagOpts` per tag, `o` in a built chart's spec.

import { type Api } from "./api";
import { ChartCard, cardId, type Annotation, type CardSpec, type ChartCardContext } from "./chart_card";
import { type RunsController } from "./runs_controller";
import { newId, type ChartOpts, type CustomSpec, type ViewState } from "./state";
import { MAX_X_TAGS, type TagsController } from "./tags_controller";
import { createControls, type Controls } from "./views/controls";
import { el } from "./views/dom";
import { type Layout } from "./views/layout";

export interface ChartsContext {
  api: Api;
  /** The current view state (read on every use: the app replaces the object). */
  state: () => ViewState;
  /** Saves the view state to the URL. */
  save: () => void;
  /** False while the log directory's first index is being built. */
  ready: () => boolean;
  /** The chart area's parts of the page. */
  layout: Pick<Layout, "pinned" | "pinnedGrid" | "grid" | "empty" | "mainBar">;
  /** What the charts read of the runs: their list, selection, colours and labels. */
  runs: Pick<
    RunsController,
    "runs" | "isSelected" | "selected" | "drawnRuns" | "runsFor" | "style" | "customStyle" | "groupStyle" | "runLabel" | "dimLegend" | "hparamNames"
  >;
  /** What the charts read of the tags: the sample, the pins, the group. */
  tags: Pick<TagsController, "tagSample" | "pinnedTags" | "isPinnedTag" | "togglePin" | "leaveGroup">;
  /** Diagnostics markers for the (run, tag) series a card shows. */
  annotations: (pairs: [string, string][]) => Annotation[];
  /** A change from the controls (axes, smoothing, highlight, refresh, pins): the app applies it everywhere. */
  changeState: (patch: Partial<ViewState>) => void;
  /** Charts were added or removed: saved, and the tree, cards and controls follow. */
  afterChartsChanged: () => void;
}

export class ChartsController {
  readonly controls: Controls;
  private readonly cards = new Map<string, ChartCard>();

  constructor(private readonly ctx: ChartsContext) {
    this.controls = createControls({
      onChange: (patch) => this.ctx.changeState(patch),
      onAddCustom: (spec) => {
        this.s.custom.push({ id: newId(), ...spec });
        this.ctx.afterChartsChanged();
      },
      onAddAgg: (spec) => {
        this.s.agg.push({ id: newId(), ...spec });
        this.ctx.afterChartsChanged();
      },
      onAddCmp: (spec) => {
        this.s.cmp.push({ id: newId(), ...spec });
        this.ctx.afterChartsChanged();
      },
    });
  }

  /** The view state of the moment (the app replaces the object on a change). */
  private get s(): ViewState {
    return this.ctx.state();
  }

  renderControls(): void {
    const runs = this.ctx.runs;
    const sample = this.ctx.tags.tagSample();
    this.controls.update({
      state: this.s,
      xTags: sample.slice(0, MAX_X_TAGS),
      runs: runs.runs.map((r) => r.name),
      runLabel: runs.runLabel,
      tags: sample,
      hparamNames: runs.hparamNames(),
      dimValues: runs.dimLegend(),
    });
  }

  /** Reloads every card (the settings or the highlight changed). */
  refreshAll(): void {
    for (const card of this.cards.values()) card.refresh();
  }

  /** Redraws every card's diagnostics markers. */
  redrawAnnotations(): void {
    for (const card of this.cards.values()) card.redrawAnnotations();
  }

  /** Forgets the charts built from the old directory's runs (the caller redraws); open tags and pins stay. */
  reset(): void {
    this.s.custom = [];
    this.s.cmp = [];
    this.s.hl = null;
    for (const card of this.cards.values()) card.destroy(); // in-flight answers of the old directory die with them
    this.cards.clear();
  }

  /** Every chart to show: the Pinned section's tags, then the other tags, then the built charts. */
  private specs(): { pinned: CardSpec[]; rest: CardSpec[] } {
    const pinnedTags = this.ctx.tags.pinnedTags();
    const inPinned = new Set(pinnedTags);
    return {
      pinned: pinnedTags.map((tag): CardSpec => ({ kind: "tag", tag })),
      rest: [
        ...this.s.tags.filter((t) => !inPinned.has(t)).map((tag): CardSpec => ({ kind: "tag", tag })),
        ...this.s.custom.map((spec): CardSpec => ({ kind: "custom", spec })),
        ...this.s.agg.map((spec): CardSpec => ({ kind: "agg", spec })),
        ...this.s.cmp.map((spec): CardSpec => ({ kind: "cmp", spec })),
      ],
    };
  }

  private removeCard(card: ChartCard): void {
    const spec = card.spec;
    if (spec.kind === "tag" && this.s.pins.includes(spec.tag)) {
      // A chart pinned by name leaves the Pinned section when closed.
      this.s.tags = this.s.tags.filter((t) => t !== spec.tag);
      this.ctx.changeState({ pins: this.s.pins.filter((p) => p !== spec.tag) });
      this.ctx.afterChartsChanged();
      return;
    }
    if (spec.kind === "tag") this.s.tags = this.s.tags.filter((t) => t !== spec.tag);
    else if (spec.kind === "custom") this.s.custom = this.s.custom.filter((c) => c.id !== spec.spec.id);
    else if (spec.kind === "agg") this.s.agg = this.s.agg.filter((c) => c.id !== spec.spec.id);
    else this.s.cmp = this.s.cmp.filter((c) => c.id !== spec.spec.id);
    this.ctx.afterChartsChanged();
  }

  private setCardOpts(card: ChartCard, opts: ChartOpts): void {
    const spec = card.spec;
    const o = Object.keys(opts).length ? opts : undefined;
    if (spec.kind === "tag") {
      const tagOpts = { ...this.s.tagOpts };
      if (o) tagOpts[spec.tag] = o;
      else delete tagOpts[spec.tag];
      this.s.tagOpts = tagOpts;
    } else {
      spec.spec.o = o;
    }
    this.ctx.save();
  }

  /** Makes the grids hold one card per chart spec, in order: the Pinned section's, then the others. */
  renderCards(): void {
    const { pinned, rest } = this.specs();
    const wanted = new Set([...pinned, ...rest].map(cardId));
    for (const [id, card] of this.cards) {
      if (!wanted.has(id)) {
        card.destroy();
        this.cards.delete(id);
      }
    }
    const fresh: ChartCard[] = [];
    const place = (specs: CardSpec[], grid: HTMLElement): void => {
      for (const spec of specs) {
        const id = cardId(spec);
        let card = this.cards.get(id);
        if (!card) {
          card = this.newCard(spec);
          this.cards.set(id, card);
          fresh.push(card);
        }
        grid.appendChild(card.panel.root); // appending an existing node moves it: keeps order
      }
    };
    const layout = this.ctx.layout;
    place(pinned, layout.pinnedGrid);
    place(rest, layout.grid);
    layout.pinned.hidden = pinned.length === 0;
    layout.empty.hidden = pinned.length + rest.length > 0;
    this.renderMainBar();
    for (const card of fresh) {
      card.mount();
      if (this.ctx.runs.runs.length) card.refresh();
    }
    // Pins changed: refresh the pin marks of the cards that stayed.
    for (const card of this.cards.values()) if (!fresh.includes(card) && card.tag !== null) card.panel.root.dataset.pinned = String(this.ctx.tags.isPinnedTag(card.tag));
  }

  /** What every chart card shares: the API, runs, styles, settings and the diagnostics markers. */
  private cardContext(): Omit<ChartCardContext, "onOpts" | "onClose" | "onPin" | "isPinned"> {
    const runs = this.ctx.runs;
    return {
      api: this.ctx.api,
      runsFor: runs.runsFor,
      selectedRuns: runs.drawnRuns,
      style: runs.style,
      runLabel: runs.runLabel,
      groupStyle: runs.groupStyle,
      settings: () => ({
        x: this.s.x,
        xlog: this.s.xlog,
        ylog: this.s.ylog,
        outliers: this.s.outliers,
        smooth: { kind: this.s.smooth, weight: this.s.weight, window: this.s.window },
      }),
      xTags: () => this.ctx.tags.tagSample().slice(0, MAX_X_TAGS),
      ready: () => this.ctx.ready(),
      annotations: (pairs: [string, string][]): Annotation[] => this.ctx.annotations(pairs),
    };
  }

  private newCard(spec: CardSpec): ChartCard {
    const custom = spec.kind === "custom" ? spec.spec : null;
    const card = new ChartCard(spec, {
      ...this.cardContext(),
      ...(custom ? { style: (run: string, tag: string) => this.ctx.runs.customStyle(custom, run, tag) } : {}),
      onOpts: (c, o) => this.setCardOpts(c, o),
      onClose: (c) => this.removeCard(c),
      onPin: (c) => {
        if (c.tag !== null) this.ctx.tags.togglePin(c.tag);
      },
      isPinned: (c) => c.tag !== null && this.ctx.tags.isPinnedTag(c.tag),
    });
    card.opts = spec.kind === "tag" ? { ...(this.s.tagOpts[spec.tag] ?? {}) } : { ...(spec.spec.o ?? {}) };
    return card;
  }

  /** A card of a side panel (a diagnostics finding's chart): drawn like a custom chart with `annotations`,
   * `onClose` when its ✕ is clicked; not one of the chart area's cards. */
  panelCard(spec: CustomSpec, annotations: () => Annotation[], onClose: () => void): ChartCard {
    const card = new ChartCard(
      { kind: "custom", spec },
      {
        ...this.cardContext(),
        style: (run, tag) => this.ctx.runs.customStyle(spec, run, tag),
        annotations: () => annotations(),
        onOpts: (c, o) => (c.opts = o),
        onClose: () => onClose(),
        onPin: () => undefined,
        isPinned: () => false,
      },
    );
    // Not one of the chart area's cards (its own class, so that counting .tbp-chart counts those).
    card.panel.root.classList.replace("tbp-chart", "tbp-diag-card");
    return card;
  }

  private renderMainBar(): void {
    const bar = this.ctx.layout.mainBar;
    const n = this.cards.size;
    if (!n) {
      bar.replaceChildren();
      return;
    }
    const clear = el("button", { class: "tbp-link", testid: "charts-clear", text: "clear all" });
    clear.addEventListener("click", () => {
      this.s.tags = [];
      this.ctx.tags.leaveGroup();
      this.s.custom = [];
      this.s.agg = [];
      this.s.cmp = [];
      this.ctx.afterChartsChanged();
    });
    const drawn = this.ctx.runs.drawnRuns().length;
    const selected = this.ctx.runs.selected().length;
    const hidden = selected - drawn;
    const runs = el("span", {
      testid: "charts-runs",
      "data-drawn": drawn,
      text: `${n} chart${n === 1 ? "" : "s"} · ${drawn} run${drawn === 1 ? "" : "s"}`,
    });
    const note = hidden > 0
      ? el("span", { class: "tbp-filter-note", testid: "charts-filter-note", text: `${hidden} selected run${hidden === 1 ? "" : "s"} hidden by the run filter` })
      : null;
    bar.replaceChildren(...(note ? [runs, note, clear] : [runs, clear]));
  }

  /** Reloads the cards; with `changed`, only those that may show one of these runs. */
  updateCards(changed: Set<string> | null): void {
    this.renderMainBar();
    if (!this.ctx.runs.runs.length) return;
    for (const card of this.cards.values()) {
      if (changed && !this.cardTouches(card, changed)) continue;
      card.refresh();
    }
  }

  private cardTouches(card: ChartCard, runs: Set<string>): boolean {
    const spec = card.spec;
    const selected = this.ctx.runs;
    if (spec.kind === "tag") return [...runs].some((r) => selected.isSelected(r));
    if (spec.kind === "custom") return spec.spec.series.some(([r]) => runs.has(r));
    if (spec.kind === "cmp") return runs.has(spec.spec.a[0]) || runs.has(spec.spec.b[0]);
    return [...runs].some((r) => selected.isSelected(r));
  }
}
