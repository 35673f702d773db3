#!/usr/bin/env python3
"""The draw test vectors, checked by a second implementation written from docs/draws.md alone
(Python's standard library): each spec's id (RFC 8785 for these ASCII specs), RFC 3797 with a
pulse as the last source, and lavabeacon-v1's pick, weighted and integers. Run from this
directory: python3 check.py (tests/draws.rs runs it)."""
import hashlib, hmac, json, sys

def canonical(v):
    # RFC 8785 for these specs: strings, small integers, arrays, objects (ASCII keys).
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + canonical(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)

class Stream:
    def __init__(self, key, draw_id):
        self.key, self.id, self.i, self.words = key, draw_id, 0, []
    def word(self):
        if not self.words:
            b = hmac.new(self.key, b"lavabeacon-v1\0" + self.id + self.i.to_bytes(8, "big"), hashlib.sha512).digest()
            self.i += 1
            self.words = [int.from_bytes(b[j:j+8], "big") for j in range(0, 64, 8)]
        return self.words.pop(0)
    def uniform(self, n):
        zone = 2**64 - (2**64 % n)
        while True:
            x = self.word()
            if x < zone:
                return x % n

def rfc3797(sources, pool, count):
    key = "".join("".join(f"{v}." for v in sorted(src)) + "/" for src in sources).encode()
    rem, got = list(range(1, pool + 1)), []
    for i in range(count):
        c = i.to_bytes(2, "big")
        got.append(rem.pop(int.from_bytes(hashlib.md5(c + key + c).digest(), "big") % len(rem)))
    return key.decode(), got

# RFC 3797's own example first (section 6), then the vector with a pulse as the last source.
assert rfc3797([[9319], [2, 5, 12, 8, 10], [9, 18, 26, 34, 41, 45]], 25, 16)[1] == [
    17, 7, 2, 16, 25, 23, 8, 24, 19, 13, 22, 5, 18, 9, 1, 4]
spec = json.load(open("rfc3797-pulse.spec.json"))
result = json.load(open("rfc3797-pulse.result.json"))
sources = [[int(v) for v in src] for src in spec["sources"]]
sources.append([int(result["pulse"]["outputValue"], 16)])
key, got = rfc3797(sources, len(spec["pool"]["entries"]), spec["count"])
assert hashlib.sha512(canonical(spec).encode()).hexdigest() == result["drawId"]
assert key == result["selection"]["key"], key
assert got == [p["index"] for p in result["selection"]["picks"]], got
print("rfc3797-pulse ok", got)

for name in ["v1-pick", "v1-weighted", "v1-integers"]:
    spec = json.load(open(f"{name}.spec.json"))
    result = json.load(open(f"{name}.result.json"))
    draw_id = hashlib.sha512(canonical(spec).encode()).digest()
    assert draw_id.hex() == result["drawId"], name
    s = Stream(bytes.fromhex(result["pulse"]["outputValue"]), draw_id)
    if spec["operation"] == "pick":
        rem = list(range(1, len(spec["pool"]["entries"]) + 1))
        got = [rem.pop(s.uniform(len(rem))) for _ in range(spec["count"])]
        assert got == [p["index"] for p in result["selection"]["picks"]], (name, got)
    elif spec["operation"] == "weighted":
        rem = [(i + 1, int(w)) for i, w in enumerate(spec["weights"])]
        got = []
        for _ in range(spec["count"]):
            r = s.uniform(sum(w for _, w in rem))
            for k, (i, w) in enumerate(rem):
                if r < w:
                    got.append(rem.pop(k)[0]); break
                r -= w
        assert got == [p["index"] for p in result["selection"]["picks"]], (name, got)
    else:
        lo, hi = int(spec["range"]["min"]), int(spec["range"]["max"])
        got = [str(lo + s.uniform(hi - lo + 1)) for _ in range(spec["count"])]
        assert got == result["selection"]["integers"], (name, got)
    print(name, "ok", got)
