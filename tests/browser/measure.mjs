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
  await page.goto(`${base}/`);
  await page.waitForFunction(() => ["ok", "failed"].includes(document.getElementById("verification").dataset.state));
  const verified = await page.evaluate(() => performance.now());
  const state = await page.locator("#verification").getAttribute("data-state");
  // Requests still running when the result came (the timeline, the day's manifests) count too.
  await page.waitForTimeout(1000);
  // Resource Timing: transferSize is what crossed the network (0 for a cache hit); the SSE
  // stream, never finished, is not among the entries.
  const r = await page.evaluate(() => {
    const all = [performance.getEntriesByType("navigation")[0], ...performance.getEntriesByType("resource")];
    const net = all.filter((e) => e.transferSize > 0);
    return {
      readable: all[0].domContentLoadedEventEnd,
      requests: all.length,
      network: net.length,
      bytes: net.reduce((a, e) => a + e.transferSize, 0),
      cached: all.filter((e) => e.transferSize === 0).map((e) => e.name.replace(/^https?:\/\/[^/]+/, "")),
    };
  });
  await page.close();
  return { ...r, verified, state };
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
console.log(summary("requests", fresh.map((f) => f.requests), ""));
console.log(summary("bytes over the network", fresh.map((f) => f.bytes), "B"));
console.log(`repeat visit in the same context: ${repeat.requests} requests, ${repeat.network} over the network ` +
  `(${repeat.bytes} B), verified at ${repeat.verified.toFixed(0)} ms; from the cache: ${repeat.cached.join(" ")}`);
