// Log directories: the picker of the top bar (views/logdir_picker.ts), switching, upload, and the recently
// used directories.
//
// - The view names the directory (`logdir`, null: TensorBoard's --logdir) and every request carries it
//   (api.ts). Switching fetches the new directory's /runs first: a refusal (400, 403, 404) is shown in the
//   picker and the current view stays; else the app drops what belonged to the old directory and takes the
//   answer like a polled one.
// - An upload switches to the directory the server put the run in and selects that run; /runs is polled
//   fast until the directory lists it (PENDING_RUN_MS at most), and its first charts open when none are.

import { type Api, ApiError, type LogdirsInfo, type RunsAnswer } from "./api";
import { RECENT_MAX, loadRecentLogdirs, normalizeLogdir, rememberLogdir, type ViewState } from "./state";
import { LogdirPicker } from "./views/logdir_picker";

/** What the tree and the run table say while a directory's first index is being built. */
export const WAITING_TEXT = "Waiting for the log directory's index…";
const LOGDIR_QUERY_DEBOUNCE_MS = 200;
/** How long the tab polls fast for an uploaded run to appear in its directory. */
const PENDING_RUN_MS = 60000;
/** Charts opened for an uploaded run when none are open. */
const UPLOAD_CHARTS = 6;

export interface LogdirContext {
  api: Api;
  /** The current view state (read on every use: the app replaces the object). */
  state: () => ViewState;
  /** Saves the view state to the URL. */
  save: () => void;
  /** Forgets what belonged to the old directory and starts `target` in the waiting state. */
  reset: (target: string | null) => void;
  /** Selects this run alone (an upload's). */
  selectOnly: (run: string) => void;
  /** The opened directory's /runs answer: taken like a polled one, every chart reloaded. */
  takeRuns: (answer: RunsAnswer) => void;
  /** Charts were opened (an uploaded run's first tags). */
  afterChartsChanged: () => void;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class LogdirController {
  readonly picker: LogdirPicker;
  private logdirsInfo: LogdirsInfo | null = null;
  private switchSeq = 0;
  private querySeq = 0;
  private queryTimer = 0;
  private queryAbort: AbortController | null = null;
  private recent: string[];
  /** An uploaded run to select once its directory lists it. */
  private pendingRun: { name: string; until: number } | null = null;

  constructor(private readonly ctx: LogdirContext) {
    this.recent = loadRecentLogdirs();
    this.picker = new LogdirPicker({
      onOpen: (path) => void this.switchLogdir(path),
      onDefault: () => void this.switchLogdir(null),
      onQuery: (prefix) => this.query(prefix),
      onUpload: (file, run) => void this.upload(file, run),
    });
  }

  /** The view state of the moment (the app replaces the object on a change). */
  private get s(): ViewState {
    return this.ctx.state();
  }

  /** Whether an uploaded run is awaited (the runs are polled fast meanwhile). */
  awaitingRun(): boolean {
    return this.pendingRun !== null;
  }

  /** The picker's data (default directory, upload settings); its completions come with `query`. */
  async load(): Promise<void> {
    try {
      this.logdirsInfo = await this.ctx.api.logdirs("");
    } catch {
      return; // an older backend without /logdirs: the picker still opens typed paths
    }
    this.render();
  }

  /** Completions for the picker's input, debounced; a newer query cancels the older one. */
  private query(prefix: string): void {
    window.clearTimeout(this.queryTimer);
    this.queryTimer = window.setTimeout(async () => {
      const seq = ++this.querySeq;
      this.queryAbort?.abort();
      const abort = new AbortController();
      this.queryAbort = abort;
      try {
        const info = await this.ctx.api.logdirs(prefix.trim(), abort.signal);
        if (seq !== this.querySeq) return;
        const first = this.logdirsInfo === null;
        this.logdirsInfo = info;
        if (first) this.render();
        this.picker.setSuggestions(info.dirs);
      } catch {
        if (seq === this.querySeq) this.picker.setSuggestions([]);
      }
    }, LOGDIR_QUERY_DEBOUNCE_MS);
  }

  private defaultLogdir(): string | null {
    return this.logdirsInfo?.default ?? null;
  }

  render(): void {
    const def = this.defaultLogdir();
    const isDefault = this.s.logdir === null;
    this.picker.setCurrent(this.s.logdir ?? def, isDefault);
    this.picker.setDefault(def, isDefault);
    this.picker.setRecent(this.recent, this.s.logdir ?? def);
    this.picker.setUpload(Boolean(this.logdirsInfo?.upload), this.logdirsInfo?.upload_max_bytes ?? 0);
  }

  /** A polled /runs failed: a directory named by the URL that the server refuses (or that vanished) is
   * said so in the picker. */
  runsFailed(e: unknown): void {
    if (!(e instanceof ApiError)) return;
    // the default directory refused (an access file that does not give it to this user): say so too
    if ((this.s.logdir !== null && [400, 403, 404].includes(e.status)) || e.status === 403) this.picker.setError(e.message);
  }

  private remember(path: string | null): void {
    if (!path) return;
    const stored = rememberLogdir(path);
    this.recent = [...new Set([path, ...stored, ...this.recent])].slice(0, RECENT_MAX);
  }

  /**
   * Opens another log directory (null: TensorBoard's --logdir). Its /runs is fetched first: a refusal
   * (400, 403, 404) is shown in the picker and nothing else changes. `selectRun`: the run to select (an
   * upload's), polled for until the directory lists it. Resolves to whether the switch happened.
   */
  private async switchLogdir(raw: string | null, selectRun?: string): Promise<boolean> {
    let target = raw === null ? null : normalizeLogdir(raw);
    if (target !== null && target === this.defaultLogdir()) target = null;
    const seq = ++this.switchSeq;
    this.picker.setBusy(true);
    this.picker.setError(null);
    let answer: RunsAnswer;
    try {
      answer = await this.ctx.api.runs(target);
    } catch (e) {
      if (seq !== this.switchSeq) return false;
      this.picker.setBusy(false);
      this.picker.setError(errorMessage(e));
      return false;
    }
    if (seq !== this.switchSeq) return false;
    this.picker.setBusy(false);
    this.picker.close();
    if (target !== this.s.logdir) {
      this.remember(this.s.logdir ?? this.defaultLogdir());
      this.remember(target ?? this.defaultLogdir());
      this.pendingRun = null;
      this.ctx.reset(target);
    } else if (selectRun === undefined) {
      this.picker.setError(null);
    }
    if (selectRun !== undefined) {
      this.ctx.selectOnly(selectRun);
      this.s.runs = [selectRun];
      this.pendingRun = { name: selectRun, until: Date.now() + PENDING_RUN_MS };
      this.ctx.save();
    }
    this.render();
    this.ctx.takeRuns(answer);
    return true;
  }

  /** Selects an uploaded run once the directory lists it, and opens its first charts when none are open. */
  takePendingRun(names: Set<string>): void {
    const pending = this.pendingRun;
    if (!pending) return;
    if (!names.has(pending.name)) {
      if (Date.now() > pending.until) this.pendingRun = null;
      return;
    }
    this.pendingRun = null;
    if (this.s.tags.length || this.s.agg.length || this.s.custom.length || this.s.cmp.length) return;
    const logdir = this.s.logdir;
    void this.ctx.api.tagList({ under: "", sep: this.s.sep, limit: UPLOAD_CHARTS, runs: [pending.name] }).then(
      (answer) => {
        if (this.s.logdir !== logdir || this.s.tags.length) return;
        this.s.tags = answer.tags.slice();
        this.ctx.afterChartsChanged();
      },
      () => undefined, // the tree shows tag errors
    );
  }

  private async upload(file: File, run: string): Promise<void> {
    this.picker.setUploadStatus(`Uploading ${file.name}…`, "busy");
    let result;
    try {
      result = await this.ctx.api.upload(file, run, (sent, total) => {
        const pct = total > 0 ? Math.min(100, Math.round((100 * sent) / total)) : 0;
        this.picker.setUploadStatus(`Uploading ${file.name}… ${pct}%`, "busy");
      });
    } catch (e) {
      this.picker.setUploadStatus(errorMessage(e), "error"); // the server's "Upload refused: ..." as it is
      return;
    }
    const records = result.records.toLocaleString();
    this.picker.setUploadStatus(
      `Uploaded run '${result.run}' (${result.files} event file${result.files === 1 ? "" : "s"}, ${records} records)`,
      "ok",
    );
    await this.switchLogdir(result.logdir, result.run);
  }
}
