// The explorer's browser tests: Debian's Chromium, driven by playwright-core, against a real
// lavabeacon that tests/explorer.rs started. One scenario per run:
//
//   node explorer.mjs SCENARIO BASE_URL [OPTIONS]
//
// Scenarios: verifies (expects data-state="ok" and a clean load; --suite N, --screenshots DIR),
// chains (an Ed25519 chain then an RSA one: both verify, the chain selector), draw (a
// registered draw verified at #/draw/ID: --id ID --selection ok|not-checked),
// tampered (through a proxy started here that changes one byte of every pulse: expects
// "failed" and the check named), navigates (buttons, date, URL, back/forward), live (a new
// pulse over SSE), stalled (the banner, polling slowed), nojs (the server-rendered pulse),
// log (a beacon with its transparency log on: the log inclusion check passes, the log is asked
// no more than needed; --cosigned N expects N witnesses' cosignatures).
// Prints what it saw; exits 1 with the reason when an expectation fails.

import { chromium } from "playwright-core";
import http from "node:http";
import assert from "node:assert/strict";

const [scenario, base, ...rest] = process.argv.slice(2);
const option = (name) => {
  const i = rest.indexOf(name);
  return i < 0 ? undefined : rest[i + 1];
};
const TIMEOUT = 30_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});

/// A page with everything that went wrong on it recorded: console errors, uncaught
/// exceptions, failed requests and answers of 400 or more.
async function open(url, context = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...context });
  const page = await ctx.newPage();
  const problems = [];
  const requests = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("request", (r) => requests.push(r.url()));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  await page.goto(url);
  return { page, problems, requests, ctx };
}

/// Waits until the verification has a result, and returns it with the pulse it is about, read
/// at the same moment (in live mode a new pulse may replace it right after).
async function verdict(page) {
  const result = await page.waitForFunction(() => {
    const v = document.getElementById("verification");
    if (v?.dataset.state !== "ok" && v?.dataset.state !== "failed") return false;
    return {
      state: v.dataset.state,
      text: v.textContent,
      checks: Object.fromEntries([...document.querySelectorAll("#checks li")].map((li) => [li.dataset.check, li.dataset.state])),
      title: document.getElementById("pulse-title").textContent,
      hash: location.hash,
    };
  }, null, { timeout: TIMEOUT });
  return result.jsonValue();
}

/// The pulse the page shows, as "chain-pulse", once its verification is done.
async function shownAfterCheck(page) {
  const v = await verdict(page);
  const m = v.title.match(/Pulse (\d+)-(\d+)/);
  assert.ok(m, `no pulse shown: ${v.title}`);
  return { ...v, chain: Number(m[1]), pulse: Number(m[2]) };
}

/// Waits until the page shows pulse c-p and has checked it.
async function waitShown(page, c, p) {
  const until = Date.now() + TIMEOUT;
  for (;;) {
    const v = await shownAfterCheck(page);
    if (v.chain === c && v.pulse === p) return v;
    assert.ok(Date.now() < until, `pulse ${c}-${p} not shown in ${TIMEOUT} ms; the page shows ${v.title}`);
    await page.waitForTimeout(50);
  }
}

async function field(page, name) {
  return page.evaluate((name) => {
    const th = [...document.querySelectorAll("#pulse th")].find((t) => t.textContent === name);
    return th?.nextElementSibling.querySelector("code").textContent;
  }, name);
}

const scenarios = {
  async verifies() {
    const { page, problems, requests, ctx } = await open(`${base}/`);
    const v = await shownAfterCheck(page);
    assert.equal(v.state, "ok", `verification: ${v.text}`);
    for (const id of ["certificateId", "certificateValidity", "signature", "outputValue", "timeStamp", "manifest"]) {
      assert.equal(v.checks[id], "ok", `check ${id} is ${v.checks[id]}: ${v.text}`);
    }
    if (v.pulse > 1) {
      assert.equal(v.checks.previous, "ok");
      assert.equal(v.checks.precommitment, "ok");
    }
    for (const id of ["skipList", "issuer", "external", "sources"]) {
      assert.equal(v.checks[id], "not-checked", `${id} must be listed as not checked`);
    }
    const suite = option("--suite");
    if (suite !== undefined) assert.equal(await field(page, "cipherSuite"), suite);
    // The pictures and the certificate are drawn from what the API served.
    await page.waitForSelector("#timeline svg rect.cell", { timeout: TIMEOUT });
    // The day's manifests are fetched once their panel is in view.
    await page.locator("#source-health").scrollIntoViewIfNeeded();
    await page.waitForSelector("#source-health svg rect.h-ok", { timeout: TIMEOUT });
    const subject = await page.locator("#certificate th", { hasText: "subject" }).locator("xpath=..").textContent();
    assert.match(subject, /TEST ONLY/, "the dev token's certificate says TEST ONLY");
    assert.ok(await page.locator("#test").isVisible(), "a test beacon keeps its red banner");
    assert.ok(await page.locator("#test-why").isVisible(), "and says why its pulses prove nothing");
    assert.ok(requests.some((u) => u.includes("/favicon.svg")), "the icon is asked for");
    // A little longer, so that requests made after the first check are counted too.
    await page.waitForTimeout(1500);
    assert.deepEqual(problems, [], "a normal load has no console errors and no failed requests");
    const shots = option("--screenshots");
    if (shots) {
      await page.screenshot({ path: `${shots}/explorer-desktop.png`, fullPage: true });
    }
    // Closed, so that the phone's page is the only one open (each holds a stream).
    await ctx.close();
    // Phone width: nothing wider than the screen.
    const phone = await open(`${base}/`, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const pv = await shownAfterCheck(phone.page);
    assert.equal(pv.state, "ok");
    const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is ${width} px wide on a 390 px screen`);
    if (shots) await phone.page.screenshot({ path: `${shots}/explorer-phone.png`, fullPage: false });
    console.log(`verified ${v.chain}-${v.pulse}: ${v.text}`);
  },

  async tampered() {
    // A pulse of its own, not the newest, which the stream (passed unchanged) would replace.
    const proxy = await tamperingProxy(base);
    const { page } = await open(`${proxy}/#/chain/1/pulse/3`);
    const v = await waitShown(page, 1, 3);
    assert.equal(v.state, "failed", `a changed pulse must fail: ${v.text}`);
    assert.equal(v.checks.signature, "failed");
    assert.equal(v.checks.outputValue, "failed");
    assert.match(v.text, /signature/, "the failing check is named");
    console.log(`through the proxy: ${v.text}`);
  },

  async navigates() {
    const { page, problems } = await open(`${base}/`);
    const newest = await shownAfterCheck(page);
    assert.ok(newest.pulse >= 4, `needs four pulses, has ${newest.pulse}`);
    assert.equal(newest.hash, "");
    // Buttons. The page may have moved on to a newer pulse (live) before the click: the
    // pulse before the one shown at the click is the one expected.
    await page.click("#previous");
    await page.waitForFunction(() => /^#\/chain\/\d+\/pulse\/\d+$/.test(location.hash), null, { timeout: TIMEOUT });
    const [, hc, hp] = (await page.evaluate(() => location.hash)).match(/chain\/(\d+)\/pulse\/(\d+)/);
    let v = await waitShown(page, Number(hc), Number(hp));
    assert.ok(Number(hp) >= newest.pulse - 1, `previous of the newest is ${hp}`);
    assert.equal(v.state, "ok", v.text);
    await page.click("#first");
    v = await waitShown(page, newest.chain, 1);
    assert.equal(v.state, "ok", v.text);
    assert.ok(await page.locator("#previous").isDisabled(), "nothing before the first pulse");
    await page.click("#next");
    v = await waitShown(page, newest.chain, 2);
    assert.equal(v.state, "ok", v.text);
    // Back and forward walk the same pulses.
    await page.goBack();
    await waitShown(page, newest.chain, 1);
    await page.goForward();
    await waitShown(page, newest.chain, 2);
    // By date: the time of pulse 3 (read from the API), typed into the picker as UTC.
    const third = (await (await page.request.get(`${base}/beacon/2.0/chain/${newest.chain}/pulse/3`)).json()).pulse;
    await page.fill("#when", third.timeStamp.slice(0, 19));
    await page.click("#goto button[type=submit]");
    v = await waitShown(page, newest.chain, 3);
    assert.equal(v.hash, `#/chain/${newest.chain}/pulse/3`);
    // By URL, and on reload.
    await page.goto(`${base}/#/chain/${newest.chain}/pulse/2`);
    await waitShown(page, newest.chain, 2);
    await page.reload();
    v = await waitShown(page, newest.chain, 2);
    assert.equal(v.state, "ok", v.text);
    assert.equal(await page.locator("#chain").inputValue(), String(newest.chain));
    // Last: back to the newest, followed live.
    await page.click("#last");
    await page.waitForFunction(() => location.hash === "#/" && document.getElementById("live").dataset.live === "true", null, { timeout: TIMEOUT });
    v = await shownAfterCheck(page);
    assert.ok(v.pulse >= newest.pulse);
    assert.deepEqual(problems, [], "navigation makes no failed request");
    console.log(`navigated to ${newest.chain}-1, 2, 3 and back to ${v.chain}-${v.pulse}`);
  },

  async chains() {
    // Chain 2 (RSA, cipherSuite 0) followed chain 1 (Ed25519, cipherSuite 2).
    const { page, problems } = await open(`${base}/`);
    let v = await shownAfterCheck(page);
    assert.equal(v.chain, 2);
    assert.equal(v.state, "ok", v.text);
    assert.equal(await field(page, "cipherSuite"), "0");
    assert.deepEqual(await page.locator("#chain option").allTextContents(), ["chain 1", "chain 2 (newest)"]);
    // The selector goes to chain 1's last pulse, named exactly in the URL.
    await page.selectOption("#chain", "1");
    await page.waitForFunction(() => /^#\/chain\/1\/pulse\/\d+$/.test(location.hash), null, { timeout: TIMEOUT });
    const last1 = Number((await page.evaluate(() => location.hash)).split("/").pop());
    v = await waitShown(page, 1, last1);
    assert.equal(v.state, "ok", v.text);
    assert.equal(await field(page, "cipherSuite"), "2");
    assert.ok(await page.locator("#next").isDisabled(), "nothing after the last pulse of an ended chain");
    // Back to chain 2, and to its first pulse: a chain's start verifies on its own.
    await page.selectOption("#chain", "2");
    await page.waitForFunction(() => location.hash === "#/", null, { timeout: TIMEOUT });
    await page.click("#first");
    v = await waitShown(page, 2, 1);
    assert.equal(v.state, "ok", v.text);
    assert.equal(v.checks.previous, "ok", "a first pulse's previous values are all zero");
    assert.equal(await field(page, "statusCode"), "1");
    assert.deepEqual(problems, [], "no failed request across chains");
    console.log(`chains: 1-${last1} (Ed25519) and 2-1 (RSA) verified`);
  },

  async draw() {
    // A registered draw whose pulse is out: #/draw/ID checks it here.
    const id = option("--id");
    const { page, problems } = await open(`${base}/#/draw/${id}`);
    const v = await verdict(page);
    assert.equal(v.state, "ok", v.text);
    for (const check of ["drawId", "receipt", "pulse"]) assert.equal(v.checks[check], "ok", `${check}: ${v.text}`);
    const expected = option("--selection");
    assert.equal(v.checks.selection, expected, `selection: ${v.text}`);
    assert.match(v.title, /^Draw /);
    assert.deepEqual(problems, [], "no failed request");
    console.log(`draw: ${v.text}`);
  },

  async live() {
    const { page, requests } = await open(`${base}/`);
    const first = await shownAfterCheck(page);
    const before = requests.filter((u) => u.endsWith("/beacon/last")).length;
    await page.waitForFunction((p) => {
      const m = document.getElementById("pulse-title").textContent.match(/Pulse \d+-(\d+)/);
      return m && Number(m[1]) > p && document.getElementById("verification").dataset.state === "ok";
    }, first.pulse, { timeout: TIMEOUT });
    const v = await shownAfterCheck(page);
    assert.ok(requests.some((u) => u.endsWith("/beacon/2.0/stream")), "the page follows the SSE stream");
    assert.equal(requests.filter((u) => u.endsWith("/beacon/last")).length, before, "the new pulse came over SSE, not by polling");
    assert.equal(v.checks.previous, "ok");
    console.log(`live: ${first.chain}-${first.pulse} then ${v.chain}-${v.pulse}`);
  },

  async stalled() {
    const { page, requests } = await open(`${base}/`);
    await page.waitForSelector("#behind:not([hidden])", { timeout: TIMEOUT });
    const text = await page.locator("#behind").textContent();
    assert.match(text, /behind/);
    const again = Number(text.match(/again in (\d+) s/)?.[1]);
    assert.ok(again > 15, `polling is slowed while the beacon is behind (next check in ${again} s)`);
    // The timeline runs to the pulse expected now: the missing periods show as gaps.
    await page.waitForFunction(() => {
      const marks = [...document.querySelectorAll("#timeline svg rect")];
      return marks.length && marks[marks.length - 1].classList.contains("cell-gap");
    }, null, { timeout: TIMEOUT });
    const v = await shownAfterCheck(page);
    assert.equal(v.state, "ok", "what it has published still verifies");
    await page.waitForTimeout(3000);
    assert.equal(requests.filter((u) => u.endsWith("/health")).length, 1, "no faster polling while behind");
    console.log(`stalled: ${text}`);
  },

  async log() {
    // Pulses 2 then 3, not the newest (which the stream would replace), both in the log by now.
    const { page, problems, requests } = await open(`${base}/#/chain/1/pulse/2`);
    let v = await waitShown(page, 1, 2);
    assert.equal(v.state, "ok", v.text);
    assert.equal(v.checks.logInclusion, "ok", `logInclusion is ${v.checks.logInclusion}: ${v.text}`);
    const detail = () => page.locator('#checks li[data-check="logInclusion"] .detail').textContent();
    const text = await detail();
    assert.match(text, /^entry \d+ of \d+, log key \S+, (no witnesses configured|cosigned by \d+ of \d+ witnesses the beacon names)/);
    const cosigned = option("--cosigned");
    if (cosigned !== undefined) assert.match(text, new RegExp(`cosigned by ${cosigned} of `));
    // The log's panel shows the checkpoint the proof leads to.
    assert.ok(await page.locator("#log-panel").isVisible(), "the log's panel is shown");
    assert.match(await page.locator("#log pre.checkpoint").textContent(), /\n\n\u2014 /);
    await page.click("#next");
    v = await waitShown(page, 1, 3);
    assert.equal(v.checks.logInclusion, "ok", v.text);
    // Back to pulse 2: its answer is kept, not asked again.
    await page.goBack();
    v = await waitShown(page, 1, 2);
    assert.equal(v.checks.logInclusion, "ok", v.text);
    await page.waitForTimeout(1500);
    const count = (end) => requests.filter((u) => new URL(u).pathname.endsWith(end)).length;
    assert.equal(count("/log/key"), 1, "the log's key is asked once per page");
    assert.equal(count("/log/witnesses"), 1, "the witnesses are asked once per page");
    assert.equal(count("/chain/1/pulse/2/inclusion"), 1, "pulse 2's inclusion is asked once");
    assert.equal(count("/chain/1/pulse/3/inclusion"), 1, "pulse 3's inclusion is asked once");
    assert.deepEqual(problems, [], "no failed request with the log on");
    console.log(`log: ${text}`);
  },

  async nojs() {
    const { page } = await open(`${base}/`, { javaScriptEnabled: false });
    const output = await field(page, "outputValue");
    const last = (await (await page.request.get(`${base}/beacon/last`)).json()).pulse;
    // The page may have been rendered one pulse before /beacon/last was asked.
    assert.match(output, /^[0-9A-F]{128}$/);
    const uri = await field(page, "uri");
    assert.ok(uri.startsWith(last.uri.replace(/\/pulse\/\d+$/, "/pulse/")), `${uri} is a pulse of ${last.uri}'s chain`);
    assert.equal(await page.locator("#verification").getAttribute("data-state"), "pending");
    assert.match(await page.locator("#verification").textContent(), /JavaScript/);
    assert.ok(!(await page.locator("#chain").isVisible()), "no controls that cannot work");
    console.log(`without JavaScript: ${uri}`);
  },
};

/// An HTTP proxy in front of `target` that changes the first hex digit of the localRandomValue
/// of every pulse it passes (the JSON answers of the pulse routes); everything else, the SSE
/// stream included, passes unchanged.
function tamperingProxy(target) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, target);
    const upstream = http.request(url, { method: req.method, headers: { ...req.headers, host: url.host, "accept-encoding": "identity" } }, (up) => {
      const pulseRoute = /^\/beacon\/(last|\d+|2\.0\/chain\/\d+\/pulse\/(\d+|last|first))$/.test(url.pathname);
      if (!pulseRoute || up.statusCode !== 200) {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
        return;
      }
      const parts = [];
      up.on("data", (d) => parts.push(d));
      up.on("end", () => {
        const body = Buffer.concat(parts).toString().replace(/("localRandomValue":")([0-9A-Fa-f])/,
          (_, head, digit) => head + (digit === "0" ? "1" : "0"));
        const headers = { ...up.headers, "content-length": Buffer.byteLength(body) };
        delete headers.etag;
        res.writeHead(200, headers);
        res.end(body);
      });
    });
    upstream.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

let code = 0;
try {
  if (!scenarios[scenario]) throw new Error(`no such scenario: ${scenario}`);
  await scenarios[scenario]();
} catch (e) {
  console.error(`FAIL ${scenario}: ${e.stack ?? e}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
