// Bundles src/index.ts into ../tb_plus/static/index.js (ESM, minified) and index.css
// (uPlot's CSS + src/style.css). Usage: node build.mjs [--watch] [--dev]
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const watch = process.argv.includes("--watch");
const dev = process.argv.includes("--dev");

const options = {
  entryPoints: [path.join(here, "src", "index.ts")],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  outdir: path.join(here, "..", "tb_plus", "static"),
  entryNames: "index",
  legalComments: "none",
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
