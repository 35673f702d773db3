//! The beacon's web page: the newest pulse, refreshed as pulses come, and a test beacon's
//! warning in red. Everything it shows comes from the public API.

use actix_web::http::header;
use actix_web::HttpResponse;

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lavabeacon</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font-family:ui-monospace,monospace;font-size:13px;word-break:break-all;white-space:pre-wrap}
#test{display:none;background:#b00020;color:#fff;padding:.8rem 1rem;border-radius:6px;font-weight:600}
table{border-collapse:collapse;width:100%}td{border-top:1px solid #ddd;padding:.3rem .5rem;vertical-align:top}
td:first-child{white-space:nowrap;color:#555}
</style></head><body>
<h1>lavabeacon</h1>
<p id="test"></p>
<p>A public randomness beacon in the NIST Randomness Beacon 2.0 format. Newest pulse
(<a href="/beacon/last">/beacon/last</a>, <a href="/health">/health</a>):</p>
<table id="pulse"><tr><td>loading…</td></tr></table>
<h2>Sources of this pulse</h2>
<table id="sources"><tr><td>–</td></tr></table>
<p>Verify offline: <code>lavabeacon verify --cert beacon.pem pulses.jsonl</code>; the certificate is at
<code>/beacon/2.0/certificate/{certificateId}</code>.</p>
<script>
const show = ["chainIndex","pulseIndex","timeStamp","statusCode","outputValue","localRandomValue","precommitmentValue","certificateId"];
function row(k, v){const tr=document.createElement("tr");const a=document.createElement("td");a.textContent=k;const b=document.createElement("td");const c=document.createElement("code");c.textContent=v;b.appendChild(c);tr.append(a,b);return tr}
async function refresh(){
  let wait = 5000;
  try {
    const r = await fetch("/beacon/last", {cache:"no-store"});
    const t = r.headers.get("Lavabeacon-Test");
    if (t) { const e=document.getElementById("test"); e.textContent=t; e.style.display="block"; }
    if (r.ok) {
      const p = (await r.json()).pulse;
      const tb = document.getElementById("pulse"); tb.replaceChildren(...show.map(k => row(k, String(p[k]))));
      const due = Date.parse(p.timeStamp) + p.period - Date.now();
      wait = Math.max(500, due + 200);
      const s = await fetch(`/beacon/2.0/chain/${p.chainIndex}/pulse/${p.pulseIndex}/sources`);
      if (s.ok) { const m = await s.json(); document.getElementById("sources").replaceChildren(...m.sources.map(x => row(x.name, `${x.status}, ${x.creditedBits} bits credited${x.digest ? "\n" + x.digest : ""}`))); }
    } else { document.getElementById("pulse").replaceChildren(row("status", (await r.json()).error.message)); }
  } catch (e) { document.getElementById("pulse").replaceChildren(row("error", String(e))); }
  setTimeout(refresh, wait);
}
refresh();
</script></body></html>
"#;

pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}
