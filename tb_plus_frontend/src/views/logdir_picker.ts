// The log-directory picker and the upload control of the top bar (DOM only; app.ts decides).
//
// Picker: a button showing the current directory opens a panel with a path input that autocompletes
// directories under the server's roots (the app debounces and asks /logdirs), the recently used
// directories, a way back to TensorBoard's --logdir, and the server's refusal when a directory cannot be
// opened (the current view stays). Upload (shown when the server allows it): a run name and a file input;
// choosing a file sends it.
//
// Test ids: logdir-picker, logdir-current (data-path, data-default), logdir-panel, logdir-input,
// logdir-open, logdir-suggestions, logdir-option (data-path) with its logdir-drill (list the directory's
// subdirectories), logdir-recent, logdir-recent-item (data-path), logdir-default, logdir-error;
// upload-button, upload-panel, upload-run, upload-input, upload-status (class error on a refusal).

import { caret } from "./icons";
import { el } from "./dom";

export interface LogdirPickerHandlers {
  /** The user chose a directory (typed, a suggestion or a recent one). */
  onOpen: (path: string) => void;
  /** Back to TensorBoard's --logdir. */
  onDefault: () => void;
  /** The input's text changed (not debounced) or the panel opened: completions for `prefix` are wanted. */
  onQuery: (prefix: string) => void;
  /** A file was chosen for upload, with the optional run name. */
  onUpload: (file: File, run: string) => void;
}

export type UploadState = "busy" | "ok" | "error";

export class LogdirPicker {
  readonly root: HTMLElement;
  readonly input: HTMLInputElement;
  private readonly current: HTMLButtonElement;
  private readonly panel: HTMLElement;
  private readonly suggestions: HTMLElement;
  private readonly recent: HTMLElement;
  private readonly recentBox: HTMLElement;
  private readonly defaultButton: HTMLButtonElement;
  private readonly error: HTMLElement;
  private readonly uploadBox: HTMLElement;
  private readonly uploadButton: HTMLButtonElement;
  private readonly uploadPanel: HTMLElement;
  private readonly uploadRun: HTMLInputElement;
  private readonly uploadInput: HTMLInputElement;
  private readonly uploadStatus: HTMLElement;
  private readonly uploadHint: HTMLElement;
  private items: string[] = [];
  private active = -1;

  constructor(private readonly handlers: LogdirPickerHandlers) {
    this.current = el("button", {
      class: "tbp-button tbp-logdir-current",
      testid: "logdir-current",
      title: "Log directory: click to open another one",
      "aria-haspopup": "dialog",
      "aria-expanded": "false",
    });
    this.current.addEventListener("click", () => this.toggle());

    this.input = el("input", {
      class: "tbp-filter tbp-logdir-input",
      testid: "logdir-input",
      type: "text",
      placeholder: "/path/to/logs (Tab completes, Enter opens)",
      spellcheck: "false",
      autocomplete: "off",
      "aria-autocomplete": "list",
    });
    this.input.addEventListener("input", () => handlers.onQuery(this.input.value));
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    const open = el("button", { class: "tbp-button tbp-small", testid: "logdir-open", text: "Open" });
    open.addEventListener("click", () => this.openTyped());
    this.suggestions = el("ul", { class: "tbp-logdir-list", testid: "logdir-suggestions", role: "listbox" });
    this.error = el("div", { class: "tbp-error tbp-logdir-error", testid: "logdir-error", role: "alert", hidden: true });
    this.recent = el("ul", { class: "tbp-logdir-list", testid: "logdir-recent" });
    this.recentBox = el("div", { hidden: true }, el("div", { class: "tbp-logdir-head", text: "Recent" }), this.recent);
    this.defaultButton = el("button", { class: "tbp-link tbp-logdir-default", testid: "logdir-default" });
    this.defaultButton.addEventListener("click", () => handlers.onDefault());
    this.panel = el(
      "div",
      { class: "tbp-popover tbp-logdir-panel", testid: "logdir-panel", role: "dialog", hidden: true },
      el("div", { class: "tbp-filter-row" }, this.input, open),
      this.error,
      this.suggestions,
      this.recentBox,
      this.defaultButton,
    );

    // Upload. No `accept` filter: an event file's name (events.out.tfevents.<time>.<host>) has no
    // extension a filter could name, and a filter listing only archives would hide event files.
    this.uploadButton = el("button", {
      class: "tbp-button",
      testid: "upload-button",
      text: "Upload",
      title: "Upload a run: an event file, or a .zip / .tar.gz / .tgz of a run folder",
      "aria-expanded": "false",
    });
    this.uploadButton.addEventListener("click", () => this.toggleUpload());
    this.uploadRun = el("input", { class: "tbp-text", testid: "upload-run", type: "text", placeholder: "run name (optional)" });
    this.uploadInput = el("input", { type: "file", testid: "upload-input", "data-accept": "tfevents,.zip,.tar.gz,.tgz" });
    this.uploadInput.addEventListener("change", () => {
      const file = this.uploadInput.files?.[0];
      if (file) handlers.onUpload(file, this.uploadRun.value.trim());
      this.uploadInput.value = ""; // the same file can be chosen again
    });
    this.uploadHint = el("div", { class: "tbp-muted", text: "An event file (events.out.tfevents.*), or a .zip, .tar.gz or .tgz of a run folder." });
    this.uploadPanel = el(
      "div",
      { class: "tbp-popover tbp-upload-panel", testid: "upload-panel", hidden: true },
      el("label", { class: "tbp-ctl" }, el("span", { class: "tbp-ctl-label", text: "run" }), this.uploadRun),
      el("label", { class: "tbp-ctl" }, el("span", { class: "tbp-ctl-label", text: "file" }), this.uploadInput),
      this.uploadHint,
    );
    this.uploadStatus = el("span", { class: "tbp-upload-status", testid: "upload-status", role: "status" });
    this.uploadBox = el("span", { class: "tbp-upload", hidden: true }, this.uploadButton, this.uploadPanel, this.uploadStatus);

    this.root = el(
      "span",
      { class: "tbp-logdir", testid: "logdir-picker" },
      el("span", { class: "tbp-ctl-label", text: "logdir" }),
      this.current,
      this.panel,
      this.uploadBox,
    );
    document.addEventListener("mousedown", (e) => {
      const t = e.target as Node | null;
      if (t && !this.root.contains(t)) {
        this.close();
        this.closeUpload();
      }
    });
  }

  get isOpen(): boolean {
    return !this.panel.hidden;
  }

  /** Shows the current directory (its full path as the title). */
  setCurrent(path: string | null, isDefault: boolean): void {
    const text = path ?? "(TensorBoard's --logdir)";
    this.current.replaceChildren(`${shorten(text)}${isDefault ? " (default)" : ""} `, caret(true));
    this.current.title = `Log directory: ${text}${isDefault ? " (TensorBoard's --logdir)" : ""}. Click to open another one.`;
    this.current.dataset.path = path ?? "";
    this.current.dataset.default = String(isDefault);
  }

  /** The way back to the default; hidden when the default is shown. */
  setDefault(path: string | null, isDefault: boolean): void {
    this.defaultButton.hidden = isDefault;
    this.defaultButton.textContent = `← back to TensorBoard's --logdir${path ? ` (${path})` : ""}`;
  }

  setSuggestions(dirs: string[]): void {
    this.items = dirs;
    this.active = -1;
    this.suggestions.replaceChildren(
      ...dirs.map((d, i) => {
        const name = el("span", { class: "tbp-logdir-path", text: d });
        const drill = el("button", { class: "tbp-link tbp-small", testid: "logdir-drill", text: "›", title: `List the directories in ${d}` });
        const li = el("li", { class: "tbp-logdir-item", testid: "logdir-option", role: "option", "data-path": d, title: `Open ${d}` }, name, drill);
        li.addEventListener("mousedown", (e) => e.preventDefault()); // keep the input's focus
        li.addEventListener("click", (e) => {
          if (e.target === drill) this.complete(i);
          else this.handlers.onOpen(d);
        });
        return li;
      }),
    );
  }

  setRecent(paths: string[], current: string | null): void {
    this.recentBox.hidden = paths.length === 0;
    this.recent.replaceChildren(
      ...paths.map((p) => {
        const li = el("li", {
          class: `tbp-logdir-item${p === current ? " current" : ""}`,
          testid: "logdir-recent-item",
          "data-path": p,
          title: `Open ${p}`,
          text: p,
        });
        li.addEventListener("click", () => this.handlers.onOpen(p));
        return li;
      }),
    );
  }

  setError(message: string | null): void {
    this.error.hidden = message === null;
    this.error.textContent = message ?? "";
    this.input.classList.toggle("bad", message !== null);
    if (message !== null) this.show();
  }

  setBusy(busy: boolean): void {
    this.panel.dataset.busy = String(busy);
    this.current.classList.toggle("busy", busy);
  }

  setUpload(enabled: boolean, maxBytes: number): void {
    this.uploadBox.hidden = !enabled;
    if (maxBytes > 0) this.uploadHint.textContent = `An event file (events.out.tfevents.*), or a .zip, .tar.gz or .tgz of a run folder; at most ${Math.round(maxBytes / 1048576)} MB.`;
  }

  /** The upload's progress or result; "error" shows the server's message as it is. */
  setUploadStatus(text: string, state: UploadState | null): void {
    this.uploadStatus.textContent = text;
    this.uploadStatus.classList.toggle("error", state === "error");
    this.uploadStatus.classList.toggle("tbp-error", state === "error");
    this.uploadStatus.classList.toggle("ok", state === "ok");
    this.uploadStatus.dataset.state = state ?? "";
    this.uploadInput.disabled = state === "busy";
  }

  show(): void {
    if (this.isOpen) return;
    this.panel.hidden = false;
    this.current.setAttribute("aria-expanded", "true");
    this.closeUpload();
    this.handlers.onQuery(this.input.value);
    this.input.focus();
    this.input.select(); // typing replaces the last path; Tab / → keep it
  }

  close(): void {
    if (!this.isOpen) return;
    this.panel.hidden = true;
    this.current.setAttribute("aria-expanded", "false");
  }

  private toggle(): void {
    if (this.isOpen) this.close();
    else this.show();
  }

  private toggleUpload(): void {
    const open = this.uploadPanel.hidden;
    this.uploadPanel.hidden = !open;
    this.uploadButton.setAttribute("aria-expanded", String(open));
    if (open) this.close();
  }

  private closeUpload(): void {
    this.uploadPanel.hidden = true;
    this.uploadButton.setAttribute("aria-expanded", "false");
  }

  private openTyped(): void {
    const v = this.input.value.trim();
    if (v) this.handlers.onOpen(v);
  }

  /** Puts suggestion i in the input with a trailing "/", which lists its subdirectories. */
  private complete(i: number): void {
    const d = this.items[i];
    if (d === undefined) return;
    this.input.value = d.endsWith("/") ? d : `${d}/`;
    this.input.focus();
    this.handlers.onQuery(this.input.value);
  }

  private highlight(i: number): void {
    const rows = [...this.suggestions.children] as HTMLElement[];
    this.active = rows.length ? (i + rows.length) % rows.length : -1;
    rows.forEach((r, k) => {
      r.classList.toggle("active", k === this.active);
      r.setAttribute("aria-selected", String(k === this.active));
    });
    rows[this.active]?.scrollIntoView({ block: "nearest" });
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      this.highlight(this.active + (e.key === "ArrowDown" ? 1 : -1));
    } else if (e.key === "Tab" && !e.shiftKey && this.items.length) {
      e.preventDefault();
      this.complete(this.active >= 0 ? this.active : 0);
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (this.active >= 0 && this.items[this.active] !== undefined) this.handlers.onOpen(this.items[this.active]);
      else this.openTyped();
    } else if (e.key === "Escape") {
      this.close();
      this.current.focus();
    }
  }
}

/** A long path with its middle elided, so the top bar keeps its other controls. */
function shorten(path: string, max = 60): string {
  if (path.length <= max) return path;
  const keep = max - 1;
  return `${path.slice(0, Math.ceil(keep / 3))}…${path.slice(path.length - Math.floor((2 * keep) / 3))}`;
}
