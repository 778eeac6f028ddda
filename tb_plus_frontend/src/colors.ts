// Run colours that do not change between page loads and do not collide among the runs drawn.
//
// A run's home colour is a hash of its name into PALETTE (24 colours told apart at a glance). Among the
// runs drawn together (the selection), runs are given colours in name order: each takes its home colour,
// or when another drawn run holds it, the next free one in palette order. The result depends only on the
// set of names, so it is the same after a reload; up to PALETTE.length runs never share a colour.
// A run not drawn (an unselected row) shows the colour it would get if added now.

export const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#393b79", "#e7298a", "#66a61e", "#843c39", "#e6ab02", "#7b4173",
  "#6baed6", "#1b9e77", "#a6761d", "#fdae6b", "#637939", "#9edae5", "#c49c94", "#b5cf6b",
];

/** FNV-1a over the UTF-16 code units: a stable 32-bit hash of a string. */
export function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function homeIndex(name: string): number {
  return hashName(name) % PALETTE.length;
}

/** The first palette index from `start` (in palette order) not in `used`; `start` when all are used. */
function probe(start: number, used: ReadonlySet<number>): number {
  for (let d = 0; d < PALETTE.length; d++) {
    const i = (start + d) % PALETTE.length;
    if (!used.has(i)) return i;
  }
  return start;
}

/** Colours of a set of drawn runs, recomputed only when the set changes. */
export class RunColors {
  private key: string | null = null;
  private assigned = new Map<string, number>();
  private used = new Set<number>();

  /** Sets the runs drawn together. */
  setDrawn(names: Iterable<string>): void {
    const sorted = [...new Set(names)].sort();
    const key = sorted.join("\n");
    if (key === this.key) return;
    this.key = key;
    this.assigned = new Map();
    this.used = new Set();
    // Over PALETTE.length runs, every colour is taken: the later runs share (home colours again).
    for (const name of sorted) {
      const i = this.used.size >= PALETTE.length ? homeIndex(name) : probe(homeIndex(name), this.used);
      this.assigned.set(name, i);
      this.used.add(i);
    }
  }

  index(name: string): number {
    return this.assigned.get(name) ?? probe(homeIndex(name), this.used);
  }

  color(name: string): string {
    return PALETTE[this.index(name)];
  }

  /** `n` distinct colours for the series of one run in a chart: its own first, then the next ones in
   * palette order that no other run in `taken` holds. */
  seriesColors(name: string, n: number, taken: ReadonlySet<number>): string[] {
    const first = this.index(name);
    const out = [PALETTE[first]];
    const used = new Set(taken);
    used.add(first);
    let at = first;
    while (out.length < n) {
      const i = probe((at + 1) % PALETTE.length, used);
      if (used.has(i)) {
        out.push(PALETTE[(first + out.length) % PALETTE.length]); // palette exhausted
        continue;
      }
      used.add(i);
      out.push(PALETTE[i]);
      at = i;
    }
    return out;
  }
}
