// The explorer's pictures, drawn as inline SVG from what the API served: no library, nothing
// fetched here. Each mark has a <title>, so what colour says is also said in words.

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function titled(node, words) {
  node.append(el("title", {}, words));
  return node;
}

export const STATUS_WORDS = {
  0: "intact",
  1: "first pulse of a new chain",
  2: "after a gap",
  3: "after a gap; the commitment before it was lost",
};

function clock(ms) {
  return new Date(ms).toISOString().slice(11, 19) + "Z";
}

/// The last `slots` periods up to `endMs`, one mark each: a pulse coloured by its statusCode,
/// or a short grey mark where no pulse was published. `onSelect(pulse)` opens one.
export function timeline(container, pulses, { period, endMs, slots = 60, shown, onSelect }) {
  const byTime = new Map(pulses.map((p) => [Date.parse(p.timeStamp), p]));
  const width = 600, height = 64, gap = 1;
  const w = width / slots;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height + 16}`, role: "img",
    "aria-label": `The last ${slots} periods: a mark per pulse, coloured by its statusCode` });
  let missing = 0;
  for (let i = 0; i < slots; i++) {
    const t = endMs - (slots - 1 - i) * period;
    const p = byTime.get(t);
    if (!p) {
      missing++;
      svg.append(titled(el("rect", { x: i * w, y: height - 12, width: w - gap, height: 12, class: "cell-gap" }),
        `${clock(t)}: no pulse`));
      continue;
    }
    const cls = `cell s${Math.min(p.statusCode, 3)}` +
      (shown && shown.chainIndex === p.chainIndex && shown.pulseIndex === p.pulseIndex ? " shown" : "");
    const rect = titled(el("rect", { x: i * w, y: 4, width: w - gap, height: height - 4, class: cls,
      "data-chain": p.chainIndex, "data-pulse": p.pulseIndex, tabindex: 0 }),
      `pulse ${p.chainIndex}-${p.pulseIndex} at ${clock(t)}: ${STATUS_WORDS[p.statusCode] ?? "statusCode " + p.statusCode}`);
    rect.addEventListener("click", () => onSelect(p));
    rect.addEventListener("keydown", (e) => { if (e.key === "Enter") onSelect(p); });
    svg.append(rect);
  }
  svg.append(el("text", { x: 0, y: height + 14 }, clock(endMs - (slots - 1) * period)));
  svg.append(el("text", { x: width, y: height + 14, "text-anchor": "end" }, clock(endMs)));
  container.replaceChildren(svg);
  return { missing };
}

/// Each source over the given manifests (oldest first), in `buckets` groups of consecutive
/// pulses: how often it contributed, and the entropy credited to it on average.
export function sourceHealth(container, manifests, { buckets = 48 } = {}) {
  const names = [...new Set(manifests.flatMap((m) => m.sources.map((s) => s.name)))].sort();
  const size = Math.max(1, Math.ceil(manifests.length / buckets));
  const groups = [];
  for (let i = 0; i < manifests.length; i += size) groups.push(manifests.slice(i, i + size));
  const width = 600, row = 30, label = 118, plot = width - label - 120;
  const w = plot / Math.max(groups.length, 1);
  const maxBits = Math.max(1, ...manifests.flatMap((m) => m.sources.map((s) => s.creditedBits)));
  const svg = el("svg", { viewBox: `0 0 ${width} ${row * names.length + 4}`, role: "img",
    "aria-label": "Each source: how often it contributed, and its credited bits" });
  const summary = [];
  names.forEach((name, r) => {
    const y = r * row + 2;
    svg.append(el("text", { x: 0, y: y + 18 }, name));
    let ok = 0, seen = 0, bits = 0;
    const points = [];
    groups.forEach((g, i) => {
      const entries = g.map((m) => m.sources.find((s) => s.name === name)).filter(Boolean);
      const good = entries.filter((s) => s.status === "ok").length;
      const mean = entries.length ? entries.reduce((a, s) => a + s.creditedBits, 0) / entries.length : 0;
      ok += good; seen += entries.length; bits += entries.reduce((a, s) => a + s.creditedBits, 0);
      const cls = !entries.length ? "h-empty" : good === entries.length ? "h-ok" : good === 0 ? "h-none" : "h-some";
      const first = g[0].pulseIndex, last = g[g.length - 1].pulseIndex;
      svg.append(titled(el("rect", { x: label + i * w, y, width: Math.max(w - 1, 1), height: row - 8, class: cls }),
        `${name}, pulses ${first}–${last}: ok in ${good} of ${entries.length}, ${mean.toFixed(0)} bits credited on average`));
      points.push(`${label + i * w + w / 2},${(y + row - 9 - (mean / maxBits) * (row - 12)).toFixed(1)}`);
    });
    svg.append(el("polyline", { points: points.join(" "), class: "bits" }));
    const share = seen ? (100 * ok) / seen : 0;
    svg.append(el("text", { x: width, y: y + 18, "text-anchor": "end" },
      `${share.toFixed(share === 100 || share === 0 ? 0 : 1)}% ok · ${seen ? (bits / seen).toFixed(0) : 0} bits`));
    summary.push({ name, ok, seen, meanBits: seen ? bits / seen : 0 });
  });
  container.replaceChildren(svg);
  return summary;
}
