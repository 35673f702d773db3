// How the explorer loads, measured in Debian's Chromium against a running beacon (not a test:
// docs/explorer.md#measured quotes its figures):
//
//   node measure.mjs BASE_URL [LOADS]
//
// For LOADS fresh visits (no cache): when the server-rendered pulse is readable
// (DOMContentLoaded), when the verification has its result (data-state ok or failed), how many
// requests and bytes the visit took; then one repeat visit in the same browser context, to show
// what the cache saves. Prints medians and 95th percentiles.

import { chromium } from "playwright-core";

const [base, loads = "20"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });

async function visit(ctx) {
  const page = await ctx.newPage();
  let requests = 0;
  let bytes = 0;
  const sizes = [];
  page.on("requestfinished", (r) => {
    requests++;
    sizes.push(r.sizes().then((s) => { bytes += s.responseBodySize + s.responseHeadersSize; }));
  });
  await page.goto(`${base}/`);
  await page.waitForFunction(() => ["ok", "failed"].includes(document.getElementById("verification").dataset.state));
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    return { readable: nav.domContentLoadedEventEnd, verified: performance.now() };
  });
  // Requests still running when the result came (the timeline, the day's manifests) count too.
  await page.waitForTimeout(500);
  await Promise.all(sizes);
  const state = await page.locator("#verification").getAttribute("data-state");
  await page.close();
  return { ...timing, requests, bytes, state };
}

function summary(name, values, unit) {
  const v = [...values].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  return `${name}: median ${at(0.5).toFixed(0)} ${unit}, p95 ${at(0.95).toFixed(0)} ${unit}`;
}

const fresh = [];
for (let i = 0; i < Number(loads); i++) {
  const ctx = await browser.newContext();
  fresh.push(await visit(ctx));
  await ctx.close();
}
const ctx = await browser.newContext();
await visit(ctx);
const repeat = await visit(ctx);
await ctx.close();
await browser.close();

console.log(`${fresh.length} fresh visits of ${base}/, all ${[...new Set(fresh.map((f) => f.state))].join("/")}`);
console.log(summary("readable (DOMContentLoaded, server-rendered pulse)", fresh.map((f) => f.readable), "ms"));
console.log(summary("verified (data-state set)", fresh.map((f) => f.verified), "ms"));
console.log(summary("requests finished", fresh.map((f) => f.requests), ""));
console.log(summary("bytes received (headers and bodies)", fresh.map((f) => f.bytes), "B"));
console.log(`repeat visit in the same context: ${repeat.requests} requests, ${repeat.bytes} B, verified at ${repeat.verified.toFixed(0)} ms`);
