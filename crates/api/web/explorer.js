// The beacon explorer: shows a pulse, every field under NIST's names, checks it with the
// browser's own cryptography (verify.js), and follows new pulses over the SSE stream.
//
// Everything comes from the public API, as any client would get it; nothing is trusted
// because this page came from the same server. The URL names what is shown
// (#/chain/C/pulse/P, or #/ for the newest, followed live), so it can be shared, reloaded,
// and walked with back and forward.

import { verify } from "./verify.js";
import { parseCertificate } from "./x509.js";
import { timeline, sourceHealth, STATUS_WORDS } from "./charts.js";
import { verifyDraw } from "./draw.js";
import { logChecker } from "./log.js";

document.documentElement.classList.add("js");

const $ = (id) => document.getElementById(id);

/// The pulse's log inclusion: /log/key and /log/witnesses are asked once for the page's life.
const logInclusion = logChecker();

const SUITES = {
  0: "RSA PKCS#1 v1.5 with SHA-512",
  1: "RSA-PSS with a Sloth slow hash (CLCERT)",
  2: "Ed25519",
};

/// How often /health is asked while the beacon is on time; while it is behind, each answer
/// doubles the wait, up to HEALTH_MAX_MS (a stalled beacon gets fewer requests, not more).
const HEALTH_MS = 15_000;
const HEALTH_MAX_MS = 120_000;
/// Periods in the timeline.
const TIMELINE_SLOTS = 60;
/// Source manifests drawn at most (a day at the default 60 s period).
const HEALTH_PULSES = 1440;

const state = {
  newest: null, // the newest pulse known
  shown: null, // the pulse on the page
  live: true, // whether the page follows the newest pulse
  generation: 0, // bumped for each pulse shown: work for an older one is dropped
  recent: [], // pulses of the timeline, oldest first
  lastOfChain: new Map(), // chainIndex -> pulseIndex of its last pulse (ended chains)
  certificates: new Map(), // certificateId -> Promise of PEM text (or null)
  pulses: new Map(), // "chain-pulse" -> pulse, the last few seen (a pulse never changes)
  manifests: [], // the newest chain's recent manifests, oldest first (sources over the day)
  healthDelay: HEALTH_MS,
  healthWanted: false, // the day's manifests are fetched once their panel is in view
  expectedMs: 0, // while the beacon is behind: the time of the pulse it should have published
  healthDrawnAt: 0,
};

// ---- The API ----------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/// GET a JSON answer; a non-2xx answer throws with the API's own error message.
async function getJson(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) {
    let message = `HTTP ${r.status}`;
    try {
      message = (await r.json()).error?.message ?? message;
    } catch {
      // not JSON: the status says it
    }
    throw new HttpError(r.status, message);
  }
  return r.json();
}

/// GET JSON Lines (bulk answers): one object per line.
async function getLines(path) {
  const r = await fetch(path, { headers: { Accept: "application/x-ndjson" } });
  if (!r.ok) throw new HttpError(r.status, `HTTP ${r.status} for ${path}`);
  return (await r.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

const pulsePath = (c, p) => `/beacon/2.0/chain/${c}/pulse/${p}`;

/// Pulses kept: enough for the timeline and a walk back and forth.
const KEPT_PULSES = 256;

function keep(p) {
  state.pulses.set(`${p.chainIndex}-${p.pulseIndex}`, p);
  if (state.pulses.size > KEPT_PULSES) state.pulses.delete(state.pulses.keys().next().value);
  return p;
}

/// Pulse p of chain c: from the pulses kept (the previous pulse of a new one is usually
/// there: it came over the stream a period ago), else from the API.
async function getPulse(c, p) {
  return state.pulses.get(`${c}-${p}`) ?? keep((await getJson(pulsePath(c, p))).pulse);
}

/// The certificate a pulse names (PEM), fetched once per certificateId.
function certificate(id) {
  if (!state.certificates.has(id)) {
    state.certificates.set(id, fetch(`/beacon/2.0/certificate/${id}`)
      .then((r) => (r.ok ? r.text() : null))
      .catch(() => null));
  }
  return state.certificates.get(id);
}

/// The pulse's source manifest, or null when it has none. Asked through the chain's bulk
/// route, which answers an empty 200 for a pulse without one: no 404 in the console for
/// pulses written by an engine that keeps no manifests.
async function manifestOf(p) {
  const lines = await getLines(`/beacon/2.0/chain/${p.chainIndex}/sources?from=${p.pulseIndex}&to=${p.pulseIndex}`);
  return lines.find((m) => m.pulseIndex === p.pulseIndex) ?? null;
}

/// The index of chain c's last pulse.
async function lastIndex(c) {
  if (state.newest && c === state.newest.chainIndex) return state.newest.pulseIndex;
  if (!state.lastOfChain.has(c)) {
    state.lastOfChain.set(c, (await getJson(`/beacon/2.0/chain/${c}/pulse/last`)).pulse.pulseIndex);
  }
  return state.lastOfChain.get(c);
}

// ---- Drawing the page -------------------------------------------------------------------

function node(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

function row(name, value, note) {
  return node("tr", {}, node("th", { scope: "row" }, name),
    node("td", {}, node("code", { textContent: String(value) }), note ? node("small", { textContent: note }) : null));
}

function ago(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return `in ${-s} s`;
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/// Every field of the pulse, in NIST's order and under NIST's names.
function drawPulse(p) {
  const t = Date.parse(p.timeStamp);
  const rows = [
    row("uri", p.uri),
    row("version", p.version),
    row("cipherSuite", p.cipherSuite, SUITES[p.cipherSuite] ?? "unknown"),
    row("period", p.period, `${p.period / 1000} s between pulses`),
    row("certificateId", p.certificateId),
    row("chainIndex", p.chainIndex),
    row("pulseIndex", p.pulseIndex),
    row("timeStamp", p.timeStamp, ago(t)),
    row("localRandomValue", p.localRandomValue),
  ];
  const externals = Array.isArray(p.external) ? p.external : [p.external];
  for (const e of externals) {
    rows.push(row("external.sourceId", e.sourceId), row("external.statusCode", e.statusCode),
      row("external.value", e.value));
  }
  for (const l of p.listValues) {
    rows.push(row(`listValues: ${l.type}`, l.value, l.uri ?? "none: first pulse of the chain"));
  }
  rows.push(
    row("precommitmentValue", p.precommitmentValue, "SHA-512 of the next pulse's localRandomValue"),
    row("statusCode", p.statusCode, STATUS_WORDS[p.statusCode] ?? "unknown"),
    row("signatureValue", p.signatureValue),
    row("outputValue", p.outputValue),
  );
  $("pulse").replaceChildren(...rows);
  $("pulse-title").textContent = `Pulse ${p.chainIndex}-${p.pulseIndex}` + (state.live ? " (newest)" : "");
  document.title = `lavabeacon: pulse ${p.chainIndex}-${p.pulseIndex}`;
}

function drawSources(manifest) {
  if (!manifest) {
    $("sources-note").textContent =
      "This pulse has no published source manifest (the engine that made it kept none), so how its localRandomValue was combined cannot be shown.";
    $("sources").replaceChildren();
    return;
  }
  const total = manifest.sources.reduce((a, s) => a + s.creditedBits, 0);
  $("sources-note").textContent =
    `${manifest.sources.filter((s) => s.status === "ok").length} of ${manifest.sources.length} sources contributed; ${total} bits of entropy credited in all.`;
  const rows = manifest.sources.map((s) =>
    row(s.name, s.digest ?? "(left out)", `${s.status}; ${s.creditedBits} bits credited`));
  if (manifest.external) {
    const x = manifest.external;
    rows.push(row("external", x.outputValue ?? "(none)", `${x.status}; ${x.uri ?? x.url}`));
  }
  $("sources").replaceChildren(...rows);
}

function drawCertificate(pem, id) {
  const link = `/beacon/2.0/certificate/${id}`;
  if (!pem) {
    $("certificate").replaceChildren(row("certificate", "not available", `the beacon does not serve ${link}`));
    return;
  }
  try {
    const c = parseCertificate(pem);
    const key = c.keyAlgorithm === "RSA" ? `RSA-${c.rsaBits}` : c.keyAlgorithm;
    const rows = [
      row("subject", c.subject),
      row("issuer", c.issuer, c.issuer === c.subject ? "self-signed" : undefined),
      row("valid from", c.notBefore.toISOString()),
      row("valid until", c.notAfter.toISOString(), c.notAfter < new Date() ? "expired" : `expires ${ago(c.notAfter.getTime())}`),
      row("key", key),
      row("serial", c.serial),
      row("certificateId", id, "SHA-512 of the certificate's DER"),
    ];
    if (c.test) {
      const warn = row("TEST", "TEST ONLY - NOT FOR SECURITY USE",
        "a development certificate: whoever holds its key could sign any value");
      warn.classList.add("test-cert");
      rows.unshift(warn);
    }
    const pemRow = node("tr", {}, node("th", { scope: "row" }, "PEM"),
      node("td", {}, node("a", { href: link, textContent: "download" })));
    $("certificate").replaceChildren(...rows, pemRow);
  } catch (e) {
    $("certificate").replaceChildren(row("certificate", "unreadable", e.message));
  }
}

const STATE_WORDS = { ok: "passed", failed: "FAILED", "not-checked": "not checked" };

function drawChecks(result, name) {
  $("checks").replaceChildren(...result.checks.map((c) => {
    const li = node("li", {},
      node("span", { className: "state", textContent: STATE_WORDS[c.state] ?? c.state }),
      node("span", {}, node("span", { className: "label", textContent: c.label }),
        node("span", { className: "detail", textContent: c.detail ?? "" })));
    li.dataset.check = c.id;
    li.dataset.state = c.state;
    return li;
  }));
  const v = $("verification");
  const failed = result.checks.filter((c) => c.state === "failed");
  const passed = result.checks.filter((c) => c.state === "ok").length;
  const unchecked = result.checks.length - passed - failed.length;
  if (result.state === "ok") {
    v.dataset.state = "ok";
    v.textContent = `Verified: ${name} passed ${passed} checks (${unchecked} not checked, listed below).`;
  } else if (result.state === "failed") {
    v.dataset.state = "failed";
    v.textContent = `Verification FAILED for ${name}: ${failed.map((c) => `${c.label} (${c.detail})`).join("; ")}.`;
  } else {
    // Nothing failed, but the checks that matter could not run: never "ok" for that.
    v.dataset.state = "failed";
    const missing = result.checks.filter((c) => ["certificateId", "signature", "outputValue"].includes(c.id) && c.state !== "ok");
    v.textContent = `Could not verify ${name}: ${missing.map((c) => `${c.label} not checked (${c.detail})`).join("; ")}.`;
  }
}

function pending(p) {
  const v = $("verification");
  v.dataset.state = "pending";
  v.textContent = `Checking pulse ${p.chainIndex}-${p.pulseIndex}…`;
  $("checks").replaceChildren();
}

/// The log check among the others, before those never made here (a failed one fails the
/// pulse: a beacon that shows a pulse its log does not hold is not to be believed).
function withLog(result, log) {
  const checks = [...result.checks];
  const at = checks.findIndex((c) => c.id === "skipList");
  checks.splice(at < 0 ? checks.length : at, 0, { id: log.id, label: log.label, state: log.state, detail: log.detail });
  return { ...result, checks, state: log.state === "failed" ? "failed" : result.state };
}

/// What the log said about the pulse; the panel is hidden while there is nothing to show (no
/// log, or the pulse not in it yet).
function drawLog(check) {
  const log = check.log;
  $("log-panel").hidden = !log;
  if (!log) return;
  $("log-note").textContent =
    "The pulse's entry in the beacon's transparency log is its outputValue. The keys are those the beacon serves (/log/key, /log/witnesses): compare them with keys published elsewhere.";
  const witnesses = log.witnessesError ? `not checked (${log.witnessesError})`
    : log.witnesses.length ? `${log.cosigners.length} of ${log.witnesses.length}: ${log.cosigners.join(", ") || "none"}`
    : "no witnesses configured";
  $("log").replaceChildren(
    row("entry", log.leafIndex, `of ${log.treeSize} in the tree the checkpoint signs`),
    row("log", log.origin, `key ${log.keyName}+${log.keyId}`),
    row("root hash", log.rootHash),
    row("cosigned by", witnesses),
    node("tr", {}, node("th", { scope: "row" }, "checkpoint"),
      node("td", {}, node("pre", { className: "checkpoint", textContent: log.checkpoint }))),
  );
}

/// Checks the pulse shown with what the API serves about it; dropped if another pulse is
/// shown meanwhile.
async function check(p, generation) {
  pending(p);
  const logged = logInclusion(p);
  const first = p.pulseIndex === 1;
  let previous = null, manifest = null, pem = null, trouble = null;
  await Promise.all([
    certificate(p.certificateId).then((c) => { pem = c; }),
    first ? null : getPulse(p.chainIndex, p.pulseIndex - 1).then((x) => { previous = x; },
      (e) => { trouble = `the previous pulse could not be fetched: ${e.message}`; }),
    manifestOf(p).then((m) => { manifest = m; }, () => { manifest = null; }),
  ]);
  if (generation !== state.generation) return;
  drawSources(manifest);
  drawCertificate(pem, p.certificateId);
  if (trouble) say(trouble);
  const result = await verify({ pulse: p, certificate: pem, previous, manifest });
  const log = await logged;
  if (generation !== state.generation) return;
  drawLog(log);
  drawChecks(withLog(result, log), `pulse ${p.chainIndex}-${p.pulseIndex}`);
}

// ---- Navigation -------------------------------------------------------------------------

/// What the URL asks for: { chain, pulse } (pulse "last" for a chain's newest), or null for
/// the newest pulse, followed live.
function wanted() {
  const m = location.hash.match(/^#\/chain\/(\d+)(?:\/pulse\/(\d+|last))?$/);
  if (!m) return null;
  return { chain: Number(m[1]), pulse: m[2] === undefined ? "last" : m[2] === "last" ? "last" : Number(m[2]) };
}

function go(hash) {
  if (location.hash !== hash) location.hash = hash;
  else route();
}

function say(text) {
  $("message").textContent = text ?? "";
}

async function route() {
  const want = wanted();
  say();
  const draw = location.hash.match(/^#\/draw\/([0-9a-f]{128})$/);
  if (draw) return showDraw(draw[1]).catch((e) => say(`Cannot show draw: ${e.message}`));
  try {
    if (!want) {
      state.live = true;
      if (state.newest) await show(state.newest);
      return;
    }
    state.live = false;
    const c = want.chain;
    const p = want.pulse === "last" ? await lastIndex(c) : want.pulse;
    const pulse = state.shown && state.shown.chainIndex === c && state.shown.pulseIndex === p
      ? state.shown
      : await getPulse(c, p);
    // A chain's "last" becomes an exact pulse in the URL: what is shared stays what was seen.
    if (want.pulse === "last") history.replaceState(null, "", `#/chain/${c}/pulse/${p}`);
    await show(pulse);
  } catch (e) {
    say(`Cannot show ${location.hash.slice(1)}: ${e.message}`);
  }
}

async function show(p) {
  const generation = ++state.generation;
  state.shown = p;
  drawPulse(p);
  $("live").dataset.live = String(state.live);
  $("live").textContent = state.live ? "following the newest pulse live" : "";
  const when = new Date(Date.parse(p.timeStamp)).toISOString().slice(0, 19);
  if (document.activeElement !== $("when")) $("when").value = when;
  drawChains();
  drawTimeline();
  $("first").disabled = p.pulseIndex <= 1;
  $("previous").disabled = p.pulseIndex <= 1;
  $("last").disabled = state.live;
  $("next").disabled = true;
  lastIndex(p.chainIndex).then((last) => {
    if (generation === state.generation) $("next").disabled = p.pulseIndex >= last;
  }, () => {});
  await check(p, generation);
}

/// A registered draw (#/draw/ID): its spec, receipt and result, checked here.
async function showDraw(id) {
  const generation = ++state.generation;
  state.live = false;
  $("live").dataset.live = "false";
  $("live").textContent = "";
  const v = $("verification");
  v.dataset.state = "pending";
  v.textContent = `Checking draw ${id.slice(0, 16)}…`;
  $("checks").replaceChildren();
  const draw = await getJson(`/draws/${id}`);
  let result = null;
  try {
    result = await getJson(`/draws/${id}/result`);
  } catch (e) {
    if (e.status !== 425) throw e;
  }
  const receiptCert = await certificate(draw.receipt.certificateId);
  const pulse = result?.pulse;
  const pulseCert = pulse ? await certificate(pulse.certificateId) : null;
  const previous = result?.previous ?? (pulse && pulse.pulseIndex > 1 ? await getPulse(pulse.chainIndex, pulse.pulseIndex - 1) : null);
  if (generation !== state.generation) return;
  const spec = draw.spec;
  $("pulse-title").textContent = `Draw ${id.slice(0, 16)}…: ${spec.title}`;
  document.title = `lavabeacon: draw ${id.slice(0, 16)}`;
  const names = spec.pool?.entries;
  const rows = [
    row("drawId", id),
    row("method", spec.method, spec.operation),
    row("targetTime", spec.targetTime, "the pulse of this time decides"),
    row("registeredAt", draw.receipt.registeredAt, `receipt signed by certificate ${draw.receipt.certificateId.slice(0, 16)}…`),
  ];
  if (result) {
    rows.push(row("pulse", `${result.pulse.chainIndex}-${result.pulse.pulseIndex}`, result.pulse.outputValue));
    for (const p of result.selection.picks ?? []) rows.push(row(`pick ${p.position}`, p.name ?? `entry ${p.index}`, `entry ${p.index}${names ? " of " + names.length : ""}`));
    if (result.selection.integers?.length) rows.push(row("integers", result.selection.integers.join(", ")));
  }
  $("pulse").replaceChildren(...rows);
  const checked = await verifyDraw({ draw, result, certificate: receiptCert, pulseCertificate: pulseCert, previous });
  if (generation !== state.generation) return;
  drawChecks(checked, `draw ${id.slice(0, 16)}…`);
  if (!result) {
    v.dataset.state = "pending";
    v.textContent = `Draw ${id.slice(0, 16)}… waits for the pulse of ${spec.targetTime}; its spec and receipt are checked below.`;
  }
}

function drawChains() {
  const select = $("chain");
  const count = Math.max(state.newest?.chainIndex ?? 0, state.shown?.chainIndex ?? 0);
  if (select.options.length !== count) {
    select.replaceChildren(...Array.from({ length: count }, (_, i) =>
      node("option", { value: String(i + 1), textContent: `chain ${i + 1}` + (i + 1 === count ? " (newest)" : "") })));
  }
  if (state.shown) select.value = String(state.shown.chainIndex);
}

function wire() {
  $("first").addEventListener("click", () => go(`#/chain/${state.shown.chainIndex}/pulse/1`));
  $("previous").addEventListener("click", () =>
    go(`#/chain/${state.shown.chainIndex}/pulse/${state.shown.pulseIndex - 1}`));
  $("next").addEventListener("click", () =>
    go(`#/chain/${state.shown.chainIndex}/pulse/${state.shown.pulseIndex + 1}`));
  $("last").addEventListener("click", () => go("#/"));
  $("chain").addEventListener("change", (e) => {
    const c = Number(e.target.value);
    go(state.newest && c === state.newest.chainIndex ? "#/" : `#/chain/${c}`);
  });
  $("goto").addEventListener("submit", async (e) => {
    e.preventDefault();
    // The picker's time is read as UTC, as every timeStamp is.
    const ms = Date.parse($("when").value + "Z");
    if (Number.isNaN(ms)) return say("Give a date and time (UTC).");
    try {
      const p = (await getJson(`/beacon/${ms}`)).pulse;
      state.shown = p;
      go(`#/chain/${p.chainIndex}/pulse/${p.pulseIndex}`);
    } catch (err) {
      say(err.status === 425 || err.status === 404
        ? `No pulse at or after ${new Date(ms).toISOString()}: ${err.message}`
        : `Cannot go to ${new Date(ms).toISOString()}: ${err.message}`);
    }
  });
  window.addEventListener("hashchange", route);
}

// ---- Pictures ---------------------------------------------------------------------------

function drawTimeline() {
  if (!state.newest) return;
  // While the beacon is behind, the timeline runs to the pulse expected now, so the missing
  // periods show (from /health, not this computer's clock, which may be off).
  const end = Math.max(Date.parse(state.newest.timeStamp), state.expectedMs);
  timeline($("timeline"), state.recent, {
    period: state.newest.period,
    endMs: end,
    slots: TIMELINE_SLOTS,
    shown: state.shown,
    onSelect: (p) => go(`#/chain/${p.chainIndex}/pulse/${p.pulseIndex}`),
  });
}

async function loadRecent() {
  const n = state.newest;
  const end = Date.parse(n.timeStamp);
  const from = end - (TIMELINE_SLOTS - 1) * n.period;
  state.recent = (await getLines(`/beacon/2.0/pulses?from=${from}&to=${end}`)).map(keep);
  drawTimeline();
}

function addRecent(p) {
  const end = Date.parse(p.timeStamp);
  state.recent = state.recent
    .filter((x) => Date.parse(x.timeStamp) > end - TIMELINE_SLOTS * p.period && x.timeStamp !== p.timeStamp)
    .concat([p]);
  drawTimeline();
}

/// The newest chain's manifests over the last day (at most HEALTH_PULSES of them), redrawn at
/// most once a minute; only those not yet fetched are asked for.
async function loadSourceHealth() {
  const n = state.newest;
  if (!n || !state.healthWanted || Date.now() - state.healthDrawnAt < 60_000) return;
  state.healthDrawnAt = Date.now();
  const count = Math.min(HEALTH_PULSES, Math.ceil(86_400_000 / n.period));
  const oldest = Math.max(1, n.pulseIndex - count + 1);
  const have = state.manifests.filter((m) => m.chainIndex === n.chainIndex && m.pulseIndex >= oldest);
  const from = have.length ? have[have.length - 1].pulseIndex + 1 : oldest;
  const fresh = from <= n.pulseIndex
    ? await getLines(`/beacon/2.0/chain/${n.chainIndex}/sources?from=${from}&to=${n.pulseIndex}`)
    : [];
  const manifests = state.manifests = have.concat(fresh);
  if (!manifests.length) {
    $("health-note").textContent = "No source manifests in this chain: nothing to draw.";
    $("source-health").replaceChildren();
    return;
  }
  const span = (manifests.length * n.period) / 3_600_000;
  $("health-note").textContent =
    `Pulses ${manifests[0].pulseIndex} to ${manifests[manifests.length - 1].pulseIndex} of chain ${n.chainIndex} ` +
    `(${manifests.length} pulses, about ${span >= 1 ? span.toFixed(1) + " h" : Math.round(span * 60) + " min"} at a ${n.period / 1000} s period), ` +
    "in groups of consecutive pulses: green when the source contributed to every pulse of the group, orange to some, red to none; the line is the entropy credited to it.";
  sourceHealth($("source-health"), manifests);
}

// ---- Live -------------------------------------------------------------------------------

function newPulse(p) {
  if (state.newest && (p.chainIndex < state.newest.chainIndex ||
      (p.chainIndex === state.newest.chainIndex && p.pulseIndex <= state.newest.pulseIndex))) return;
  if (state.newest && p.chainIndex !== state.newest.chainIndex) {
    state.lastOfChain.set(state.newest.chainIndex, state.newest.pulseIndex);
  }
  state.newest = keep(p);
  addRecent(p);
  if (state.live) {
    show(p);
  } else if (state.shown) {
    drawChains();
    lastIndex(state.shown.chainIndex).then((last) => { $("next").disabled = state.shown.pulseIndex >= last; }, () => {});
  }
  loadSourceHealth().catch(() => {});
}

/// Follows /beacon/2.0/stream. Read with fetch rather than EventSource so that every
/// reconnection, including after an error status (where EventSource gives up), resumes after
/// the last event seen with Last-Event-ID: no pulse is missed across a reconnection.
async function follow() {
  let lastId = state.newest ? `${state.newest.chainIndex}-${state.newest.pulseIndex}` : null;
  let delay = 1000;
  for (;;) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const r = await fetch("/beacon/2.0/stream", { headers, cache: "no-store" });
      if (!r.ok || !r.body) throw new HttpError(r.status, `stream: HTTP ${r.status}`);
      $("live").title = "connected to /beacon/2.0/stream";
      delay = 1000;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = { event: "message", data: [] };
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") event.data.push(text);
            else if (field === "id") lastId = text;
            else if (field === "event") event.event = text;
          }
          if (event.event === "pulse" && event.data.length) newPulse(JSON.parse(event.data.join("\n")).pulse);
        }
      }
    } catch {
      // Reconnected below, after a wait that grows while the stream keeps failing.
    }
    $("live").title = "reconnecting to /beacon/2.0/stream";
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 60_000);
  }
}

/// /health: a banner while the beacon is behind or degraded, and the test beacon's warning.
async function health() {
  let wait = HEALTH_MS;
  try {
    const r = await fetch("/health", { cache: "no-store" });
    const h = await r.json();
    const banner = $("behind");
    if (h.test) {
      const t = $("test");
      t.textContent = h.test;
      t.hidden = false;
      $("test-why").hidden = false;
    }
    const expected = h.status === "ok" ? 0 : Date.parse(h.expectedTimeStamp) || 0;
    if (expected !== state.expectedMs) {
      state.expectedMs = expected;
      drawTimeline();
    }
    if (h.status === "ok") {
      banner.hidden = true;
      state.healthDelay = HEALTH_MS;
    } else {
      state.healthDelay = Math.min(state.healthDelay * 2, HEALTH_MAX_MS);
      wait = state.healthDelay;
      const newest = h.lastPulse ? `its newest pulse, ${h.lastPulse.chainIndex}-${h.lastPulse.pulseIndex}, is from ${h.lastPulse.timeStamp}` : "it has published no pulse yet";
      const behind = h.behindMs > 0 ? `, ${Math.round(h.behindMs / 1000)} s behind` : "";
      banner.textContent = `The beacon is behind: ${newest}${behind} (${h.lastError ?? "degraded"}; database ${h.database}, HSM ${h.hsm}). ` +
        `Pulses shown here may not be the newest. Checking again in ${Math.round(wait / 1000)} s.`;
      banner.hidden = false;
    }
  } catch {
    wait = state.healthDelay = Math.min(state.healthDelay * 2, HEALTH_MAX_MS);
  }
  setTimeout(health, wait);
}

// ---- Start ------------------------------------------------------------------------------

async function start() {
  wire();
  try {
    state.newest = keep((await getJson("/beacon/last")).pulse);
  } catch (e) {
    say(`No pulse to show yet: ${e.message}`);
  }
  await route();
  health();
  follow();
  if (state.newest) loadRecent().catch((e) => say(`Recent pulses: ${e.message}`));
  // A day of manifests is a megabyte at the default period: fetched only for someone who
  // scrolls to the panel, not on every visit.
  new IntersectionObserver((entries, observer) => {
    if (!entries.some((e) => e.isIntersecting)) return;
    observer.disconnect();
    state.healthWanted = true;
    loadSourceHealth().catch((e) => say(`Sources over the last day: ${e.message}`));
  }).observe($("source-health"));
}

start();
