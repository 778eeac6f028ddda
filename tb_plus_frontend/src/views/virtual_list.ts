// A virtualised list of fixed-height rows: only the rows in view (plus some overscan) are in the DOM,
// so 100,000 rows scroll as smoothly as 100.
//
// Layout: `scroller` (overflow: auto, a definite height from its parent's CSS) holds an optional sticky
// `header`, then a `sizer` as tall as every row together; visible rows sit in the sizer at absolute
// offsets `index * rowHeight`. Rows are rebuilt from `renderRow` on every window change: the visible
// window is small, and building is cheaper than keeping recycled rows in step with their data.

import { el } from "./dom";

export interface VirtualListOptions<T> {
  rowHeight: number;
  /** Rows rendered above and below the visible ones. */
  overscan?: number;
  renderRow: (item: T, index: number) => HTMLElement;
  /** A sticky element above the rows (a table header), inside the scroller. */
  header?: HTMLElement;
  /** Height assumed while the scroller is not laid out yet (hidden, or not in the document). */
  fallbackHeight?: number;
}

export class VirtualList<T> {
  readonly sizer: HTMLElement;
  private items: readonly T[] = [];
  private readonly overscan: number;
  private frame = 0;
  private first = -1;
  private last = -1;
  private readonly resizeObserver: ResizeObserver | null = null;

  constructor(
    readonly scroller: HTMLElement,
    private readonly opts: VirtualListOptions<T>,
  ) {
    this.overscan = opts.overscan ?? 10;
    this.sizer = el("div", { class: "tbp-vsizer" });
    this.sizer.style.position = "relative";
    scroller.replaceChildren(...(opts.header ? [opts.header] : []), this.sizer);
    scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    if (typeof ResizeObserver !== "undefined") {
      this.resizeObserver = new ResizeObserver(() => this.schedule());
      this.resizeObserver.observe(scroller);
    }
  }

  get length(): number {
    return this.items.length;
  }

  /** Replaces the rows and draws the visible window now (synchronously). */
  setItems(items: readonly T[]): void {
    this.items = items;
    this.sizer.style.height = `${items.length * this.opts.rowHeight}px`;
    this.draw(true);
  }

  /** Redraws the visible rows (their data changed but not their number). */
  refresh(): void {
    this.draw(true);
  }

  /** Scrolls so that row `index` is in view. */
  scrollToIndex(index: number): void {
    const h = this.opts.rowHeight;
    const top = index * h + this.headerHeight();
    const view = this.viewHeight();
    if (top < this.scroller.scrollTop + this.headerHeight()) this.scroller.scrollTop = top - this.headerHeight();
    else if (top + h > this.scroller.scrollTop + view) this.scroller.scrollTop = top + h - view;
    this.draw(false);
  }

  destroy(): void {
    this.resizeObserver?.disconnect();
    window.cancelAnimationFrame(this.frame);
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = window.requestAnimationFrame(() => {
      this.frame = 0;
      this.draw(false);
    });
  }

  private headerHeight(): number {
    return this.opts.header ? this.opts.header.offsetHeight : 0;
  }

  private viewHeight(): number {
    return this.scroller.clientHeight || this.opts.fallbackHeight || 800;
  }

  /** Draws the rows in view; without `force`, only when the window moved. */
  private draw(force: boolean): void {
    const h = this.opts.rowHeight;
    const n = this.items.length;
    const top = Math.max(0, this.scroller.scrollTop - this.headerHeight());
    const first = Math.max(0, Math.floor(top / h) - this.overscan);
    const last = Math.min(n, Math.ceil((top + this.viewHeight()) / h) + this.overscan);
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const row = this.opts.renderRow(this.items[i], i);
      row.style.position = "absolute";
      row.style.top = `${i * h}px`;
      row.style.left = "0";
      row.style.right = "0";
      row.style.height = `${h}px`;
      rows.push(row);
    }
    this.sizer.replaceChildren(...rows);
  }
}
