#!/usr/bin/env python3
"""bench/tools.py: helpers of bench/run.sh (issue 18). Python 3 standard library only.

Subcommands (each contacts 127.0.0.1 only, each loop is bounded in count and time):
  compare      OFREP bulk answer of raxx-console vs Unleash Edge's /api/frontend answer
               for the same flags and context; exit 1 on any difference.
  chart        SVG line chart: req/s against flags per app, raxx-console and Edge.
  propagate    a flags apply on one instance, the time until OFREP on the others shows it.
  signin       sign-in latency (POST /auth/link with login-link tokens), one at a time.
  fill         one request per API key (fills the key cache), then nothing.
  apply-many   PUT a flags file to many apps, each with its own deploy key.
"""

import argparse
import http.client
import json
import math
import sys
import time


def die(msg):
    print(f"tools.py: {msg}", file=sys.stderr)
    sys.exit(1)


def loopback(host):
    if host not in ("127.0.0.1", "localhost"):
        die(f"refusing a non-loopback address: {host}")


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, math.ceil(p / 100 * len(sorted_vals)) - 1))
    return sorted_vals[i]


class Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def req(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
            except (http.client.HTTPException, ConnectionError, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- compare

def unleash_value(toggle):
    """The value a raxx flag has, from an Edge frontend toggle (None: not enabled)."""
    if toggle is None or not toggle.get("enabled"):
        return None
    v = toggle.get("variant") or {}
    p = v.get("payload")
    if not v.get("enabled") or not p:
        return True  # a boolean flag that is on
    t, val = p.get("type"), p.get("value")
    if t == "number":
        f = float(val)
        return int(f) if f.is_integer() and "." not in val else f
    if t == "json":
        return json.loads(val)
    return val


def cmd_compare(a):
    ofrep = json.load(open(a.ofrep))["flags"]
    edge = {t["name"]: t for t in json.load(open(a.edge))["toggles"]}
    same = split = 0
    diffs = []
    for f in ofrep:
        key, reason = f["key"], f.get("reason")
        raxx = f.get("value")
        got = unleash_value(edge.get(key))
        if reason == "DISABLED" or raxx is False:
            ok = got is None
        elif raxx is True:
            ok = got is True
        else:
            ok = got == raxx or (isinstance(raxx, float) and isinstance(got, (int, float)) and abs(got - raxx) < 1e-9)
        if ok:
            same += 1
        elif reason == "SPLIT":
            # A percentage rollout: raxx and Unleash bucket with different hash functions
            # (raxx: its own, Unleash: murmur3 of groupId:userId), so the two can put the same
            # user on different sides. Counted, not a failure.
            split += 1
        else:
            diffs.append(f"{key}: raxx {raxx!r} ({reason}), edge {got!r}")
    extra = set(edge) - {f["key"] for f in ofrep}
    for k in sorted(extra):
        diffs.append(f"{k}: only Edge answers it")
    print(f"compare: {len(ofrep)} flags, {same} same, {split} rollout-bucketed differently, {len(diffs)} different")
    for d in diffs[:20]:
        print("  " + d)
    sys.exit(1 if diffs or len(ofrep) != a.count else 0)


# ---------------------------------------------------------------------------- chart

def cmd_chart(a):
    # data: lines "flags raxx_rps edge_rps" (edge may be '-')
    rows = []
    for line in open(a.data):
        p = line.split()
        if len(p) >= 2 and not line.startswith("#"):
            rows.append((int(p[0]), float(p[1]) if p[1] != "-" else None, float(p[2]) if len(p) > 2 and p[2] != "-" else None))
    if not rows:
        die("no data")
    W, H, L, R, T, B = 720, 420, 80, 30, 40, 60
    xs = [r[0] for r in rows]
    ys = [v for r in rows for v in r[1:] if v]
    lx0, lx1 = math.log10(min(xs)), math.log10(max(xs))
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if lx1 == lx0:
        lx1 += 1
    if ly1 == ly0:
        ly1 += 1

    def X(x):
        return L + (math.log10(x) - lx0) / (lx1 - lx0) * (W - L - R)

    def Y(y):
        return T + (1 - (math.log10(y) - ly0) / (ly1 - ly0)) * (H - T - B)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{a.title}</text>']
    for e in range(ly0, ly1 + 1):
        y = Y(10 ** e)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:,}</text>')
    for x in xs:
        out.append(f'<line x1="{X(x):.1f}" y1="{T}" x2="{X(x):.1f}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:,}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 18}" text-anchor="middle">flags per app (log scale)</text>')
    out.append(f'<text x="18" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 {(T + H - B) / 2})">requests/s (log scale)</text>')
    for idx, (name, colour) in enumerate(((a.label_a, "#1f6feb"), (a.label_b, "#d9480f"))):
        pts = [(X(r[0]), Y(r[1 + idx])) for r in rows if r[1 + idx]]
        if not pts:
            continue
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        # The legend sits bottom left, where falling lines leave room.
        ly = H - B - 46 + idx * 20
        out.append(f'<line x1="{L + 12}" y1="{ly}" x2="{L + 32}" y2="{ly}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{L + 38}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    open(a.out, "w").write("\n".join(out) + "\n")


# ---------------------------------------------------------------------------- propagate

def ofrep_value(conn, host, key, flag, ctx):
    st, _, body = conn.req("POST", f"/ofrep/v1/evaluate/flags/{flag}", body=ctx,
                           headers={"Host": host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    if st != 200:
        die(f"OFREP on port {conn.port} answered {st}: {body[:200]!r}")
    return json.loads(body).get("value")


def cmd_propagate(a):
    bodies = [open(a.body_a, "rb").read(), open(a.body_b, "rb").read()]
    ctx = open(a.ctx, "rb").read()
    writer = Conn(a.apply_port)
    readers = [Conn(int(p)) for p in a.read_ports.split(",")]
    hosts = {c.port: f"staging.localhost:{c.port}" for c in [writer] + readers}
    delays = []
    deadline = time.monotonic() + a.max_seconds
    for i in range(a.rounds):
        if time.monotonic() > deadline:
            break
        body = bodies[i % 2]
        want = json.loads(body)["flags"][a.flag]
        want_value = want["variants"][want["default"]]
        st, _, resp = writer.req("PUT", f"/api/v1/apps/{a.app}/flags", body=body,
                                 headers={"Host": hosts[writer.port], "Authorization": f"Bearer {a.deploy_key}", "Content-Type": "application/json"})
        t0 = time.monotonic()
        if st != 200:
            die(f"apply answered {st}: {resp[:200]!r}")
        for r in readers:
            while True:
                if ofrep_value(r, hosts[r.port], a.client_key, a.flag, ctx) == want_value:
                    delays.append((time.monotonic() - t0) * 1000)
                    break
                if time.monotonic() - t0 > a.timeout:
                    die(f"instance on port {r.port} did not show the apply within {a.timeout} s")
        time.sleep(a.pause)
    delays.sort()
    print(f"RESULT propagate n={len(delays)} p50_ms={pct(delays, 50):.2f} p99_ms={pct(delays, 99):.2f} max_ms={delays[-1]:.2f}")


# ---------------------------------------------------------------------------- signin

def cmd_signin(a):
    tokens = [t.strip() for t in open(a.tokens) if t.strip()]
    conn = Conn(a.port)
    lat = []
    deadline = time.monotonic() + a.max_seconds
    fails = 0
    statuses = {}
    for tok in tokens:
        if time.monotonic() > deadline:
            break
        body = f"token={tok}".encode()
        t0 = time.monotonic()
        st, h, _ = conn.req("POST", "/auth/link", body=body, headers={
            "Host": f"staging.localhost:{a.port}", "Content-Type": "application/x-www-form-urlencoded"})
        ms = (time.monotonic() - t0) * 1000
        if st not in (200, 303, 302) or "set-cookie" not in h:
            fails += 1
            statuses[st] = statuses.get(st, 0) + 1
            continue
        lat.append(ms)
        time.sleep(a.pause)
    lat.sort()
    failed_as = ",".join(f"{k}x{v}" for k, v in sorted(statuses.items())) or "none"
    if not lat:
        print(f"RESULT signin n=0 failed={fails} failed_as={failed_as}")
        die(f"no sign-in succeeded ({fails} failed: {failed_as})")
    print(f"RESULT signin n={len(lat)} failed={fails} failed_as={failed_as} p50_ms={pct(lat, 50):.2f} p99_ms={pct(lat, 99):.2f} max_ms={lat[-1]:.2f}")


# ---------------------------------------------------------------------------- fill

def cmd_fill(a):
    ctx = open(a.ctx, "rb").read()
    conn = Conn(a.port)
    bad = 0
    n = 0
    for line in open(a.keys):
        key = line.strip()
        if not key:
            continue
        st, _, _ = conn.req("POST", "/ofrep/v1/evaluate/flags", body=ctx, headers={
            "Host": f"staging.localhost:{a.port}", "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        n += 1
        bad += st != 200
    print(f"RESULT fill n={n} not_200={bad}")
    sys.exit(1 if bad else 0)


# ---------------------------------------------------------------------------- apply-many

def cmd_apply_many(a):
    template = json.load(open(a.flags))
    conn = Conn(a.port)
    n = 0
    for line in open(a.keys):
        p = line.split()
        if len(p) != 2:
            continue
        app, key = p
        template["app"] = app
        st, _, body = conn.req("PUT", f"/api/v1/apps/{app}/flags", body=json.dumps(template).encode(), headers={
            "Host": f"staging.localhost:{a.port}", "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        if st != 200:
            die(f"apply to {app} answered {st}: {body[:200]!r}")
        n += 1
    print(f"RESULT apply-many n={n}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("compare")
    p.add_argument("--ofrep", required=True)
    p.add_argument("--edge", required=True)
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("chart")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="OFREP bulk evaluation against flags per app")
    p.add_argument("--label-a", default="raxx-console OFREP")
    p.add_argument("--label-b", default="Unleash Edge /api/frontend")
    p = sub.add_parser("propagate")
    p.add_argument("--apply-port", type=int, required=True)
    p.add_argument("--read-ports", required=True)
    p.add_argument("--app", required=True)
    p.add_argument("--deploy-key", required=True)
    p.add_argument("--client-key", required=True)
    p.add_argument("--body-a", required=True)
    p.add_argument("--body-b", required=True)
    p.add_argument("--flag", required=True)
    p.add_argument("--ctx", required=True)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--pause", type=float, default=0.02)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--max-seconds", type=float, default=30)
    p = sub.add_parser("signin")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--pause", type=float, default=0.01)
    p.add_argument("--max-seconds", type=float, default=30)
    p = sub.add_parser("fill")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--ctx", required=True)
    p = sub.add_parser("apply-many")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--keys", required=True, help="lines: app deploy-key")
    p.add_argument("--flags", required=True)
    a = ap.parse_args()
    {"compare": cmd_compare, "chart": cmd_chart, "propagate": cmd_propagate, "signin": cmd_signin,
     "fill": cmd_fill, "apply-many": cmd_apply_many}[a.cmd](a)


if __name__ == "__main__":
    main()
