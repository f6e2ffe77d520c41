// Minified + gzipped size of the tracker (the goal is under 2.5 KB).
import { gzipSync } from "node:zlib";
import { minify } from "terser";
import { SOURCE } from "./harness.mjs";

export async function size() {
  const { code } = await minify(SOURCE, { compress: { passes: 2 }, mangle: true });
  return { raw: SOURCE.length, min: code.length, gzip: gzipSync(code, { level: 9 }).length };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await size()));
