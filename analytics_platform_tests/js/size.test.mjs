import { test } from "node:test";
import assert from "node:assert/strict";
import { size } from "./size.mjs";

test("the tracker stays under 2.5 KB minified and gzipped", async () => {
  const s = await size();
  console.log(`analytics.js: ${s.raw} B source, ${s.min} B minified, ${s.gzip} B min+gzip`);
  assert.ok(s.gzip < 2560, `min+gzip is ${s.gzip} bytes`);
});
