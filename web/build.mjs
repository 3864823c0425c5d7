// Bundles the web app into dist/: one script (esbuild, minified, with a
// source map), the stylesheet and index.html. `npm run build` first generates
// the client from ../proto and type-checks everything.
import { build } from "esbuild";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await mkdir("dist", { recursive: true });
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022"],
  outfile: "dist/app.js",
  logLevel: "warning",
});
await copyFile("src/style.css", "dist/style.css");
await copyFile("index.html", "dist/index.html");
// Written last: its time is when the build finished, which `popug up`
// compares with the sources' to know whether to build again.
await writeFile("dist/BUILT", new Date().toISOString() + "\n");
