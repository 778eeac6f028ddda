// Entry point. TensorBoard imports this module in the tab's iframe and calls render() with no
// arguments; a standalone page can do the same. Everything is drawn into document.body.

import "uplot/dist/uPlot.min.css";
import "./style.css";
import { App } from "./app";
import { initTheme } from "./theme";

let started = false;

/** Adds <link rel=stylesheet> for index.css (emitted by esbuild beside index.js) and waits for it, up to 3 s. */
function loadStylesheet(): Promise<void> {
  const href = new URL("./index.css", import.meta.url).href;
  if (document.querySelector(`link[data-tb-plus]`)) return Promise.resolve();
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  link.dataset.tbPlus = "";
  return new Promise((resolve) => {
    const done = (): void => resolve();
    link.addEventListener("load", done);
    link.addEventListener("error", done);
    window.setTimeout(done, 3000);
    document.head.appendChild(link);
  });
}

export async function render(): Promise<void> {
  if (started) return;
  started = true;
  await loadStylesheet();
  initTheme();
  document.body.classList.add("tbp-body-root");
  new App().start(document.body);
}
