"""Values that exist on the beacon at argv[1], as schemathesis dictionaries bound to the API's
parameters (TOML, appended to schemathesis.toml by scripts/conformance.sh).

Without them fuzzing rarely names a pulse that exists (a time in the chain, its certificate),
so the answers it checks would be almost all 400s and 404s. Each is used one time in four;
the rest is schemathesis's own generation.
"""

import json
import sys
import urllib.request
from datetime import datetime

base = sys.argv[1]


def pulse(path):
    with urllib.request.urlopen(base + path, timeout=10) as answer:
        return json.load(answer)["pulse"]


def millis(p):
    when = datetime.fromisoformat(p["timeStamp"].replace("Z", "+00:00"))
    return int(when.timestamp() * 1000)


# Chain 1 (generated history) and chain 2 (serve's): their ends, and one pulse inside chain 1.
pulses = [pulse(f"/beacon/2.0/chain/{c}/pulse/{w}") for c in (1, 2) for w in ("first", "last")]
pulses.append(pulse(f"/beacon/2.0/chain/1/pulse/{pulses[1]['pulseIndex'] // 2}"))
times = sorted({millis(p) for p in pulses})
dictionaries = {
    "chains": sorted({p["chainIndex"] for p in pulses}),
    "indexes": sorted({p["pulseIndex"] for p in pulses}),
    "times": times,
    "timestamps": times + sorted({p["timeStamp"] for p in pulses}),
    "events": sorted({f"{p['chainIndex']}-{p['pulseIndex']}" for p in pulses}),
    # What /beacon/2.0/certificate/{id} and /beacon/2.0/externalSource/{id} name.
    "ids": sorted(
        {p["certificateId"] for p in pulses}
        | {p["external"]["sourceId"] for p in pulses if p["external"]["sourceId"].strip("0")}
    ),
}
bindings = {
    "path.c": "chains",
    "path.p": "indexes",
    "path.p1": "indexes",
    "path.p2": "indexes",
    "path.t": "times",
    "path.t1": "times",
    "path.t2": "times",
    "path.timestamp": "timestamps",
    "path.id": "ids",
    "header.Last-Event-ID": "events",
}
print("\n# Written by scripts/conformance-values.py for this run's chain.")
for name, values in dictionaries.items():
    print(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
print("[parameters]")
for key, name in bindings.items():
    print(f'"{key}" = {{ dictionary = "{name}", probability = 0.25 }}')
