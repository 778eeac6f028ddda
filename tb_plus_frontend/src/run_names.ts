// Short run names: runs are shown by what tells them apart. The path segments ("/") that every listed run
// shares at the start are replaced by "…" ("exp/2024/lr_0.1/train" and "exp/2024/lr_0.01/train" read
// "…/lr_0.1/train" and "…/lr_0.01/train"); a name still longer than the room is cut in the middle, so
// that both its start and its distinguishing end stay visible. The full name goes in the title.

/** Cuts `text` to at most `max` characters by replacing its middle with "…". */
export function middleCut(text: string, max: number): string {
  if (text.length <= max || max < 5) return text;
  const keep = max - 1;
  const head = Math.ceil(keep / 2.5); // the end tells runs apart more often: keep more of it
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

/** The number of leading "/" segments shared by every name, leaving at least one segment to each. */
export function commonPrefixSegments(names: readonly string[]): number {
  if (names.length < 2) return 0;
  const split = names.map((n) => n.split("/"));
  let k = 0;
  const limit = Math.min(...split.map((s) => s.length)) - 1;
  while (k < limit && split.every((s) => s[k] === split[0][k])) k++;
  return k;
}

/** Display names of a list of runs: the shared leading segments elided, then cut in the middle to `max`. */
export class RunNames {
  private prefix = 0;
  private key = "";
  private readonly cache = new Map<string, string>();

  constructor(private readonly max = 40) {}

  /** Sets the runs listed (the names compared); cheap when they did not change. */
  setRuns(names: readonly string[]): void {
    const key = names.join("\n");
    if (key === this.key) return;
    this.key = key;
    this.prefix = commonPrefixSegments(names.filter((n) => n !== "."));
    this.cache.clear();
  }

  /** The short form of `name` (cut to `max`, or this instance's length). */
  short(name: string, max = this.max): string {
    const k = `${max}\u0000${name}`;
    let s = this.cache.get(k);
    if (s === undefined) {
      s = name;
      if (this.prefix > 0) {
        const parts = name.split("/");
        if (parts.length > this.prefix) s = `…/${parts.slice(this.prefix).join("/")}`;
      }
      s = middleCut(s, max);
      this.cache.set(k, s);
    }
    return s;
  }
}
