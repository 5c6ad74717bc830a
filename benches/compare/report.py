#!/usr/bin/env python3
"""The table, the goals and the per-round values of benches/compare.sh.

    report.py META RAW IDLE UPLOAD_MIB RATE

META: lines naming the machine and the run, printed first. RAW: one measurement a
line, `round contender metric value`. Each cell is the median over the rounds with the
half-width of a 95% interval (Student's t over the rounds' values); the last column is
the median of the per-round ratios clawveil/nginx (both measured in the same round, one
right after the other) with the 95% interval of their mean. Goals are reported, never
enforced.
"""
import statistics
import sys
from collections import defaultdict

meta, raw, idle, upload_mib, rate = sys.argv[1:6]
CONTENDERS = ["nginx", "caddy", "clawveil", "direct"]
MIB = int(upload_mib)
UP = f"{MIB // 1024} GiB" if MIB >= 1024 else f"{MIB} MiB"

# metric, axis label, decimals; every label says which direction is better
ROWS = [
    ("h1_1k", "HTTPS h1 keep-alive 1 KiB, wrk -c32 (req/s, more is better)", 0),
    ("h1_64k", "HTTPS h1 keep-alive 64 KiB, wrk -c32 (req/s, more is better)", 0),
    ("h2_1k", "HTTPS h2 1 KiB, h2load -c16 -m10 (req/s, more is better)", 0),
    ("h2_64k", "HTTPS h2 64 KiB, h2load -c16 -m10 (req/s, more is better)", 0),
    ("post_16k", "HTTPS h1 16 KiB JSON POST, wrk -c32 (req/s, more is better)", 0),
    ("p50_us", f"latency p50 at {rate} req/s, h1 1 KiB (us, less is better)", 0),
    ("p99_us", f"latency p99 at {rate} req/s (us, less is better)", 0),
    ("p999_us", f"latency p99.9 at {rate} req/s (us, less is better)", 0),
    ("hs_full", "full TLS 1.3 handshakes, 16 at a time (per s, more is better)", 0),
    ("hs_resume", "resumed TLS 1.3 handshakes, 16 at a time (per s, more is better)", 0),
    ("cpu_us", "CPU per request, h1 1 KiB run (us, less is better)", 1),
    ("rss_rest_mb", "RSS at rest, all processes (MB, less is better)", 1),
    ("idle_kib", f"RSS per idle TLS connection, {idle} held (KiB, less is better)", 1),
    ("upload_growth_mb", f"RSS growth during a {UP} streamed upload (MB, less is better)", 1),
    ("upload_mbs", f"{UP} streamed upload, curl -T (MB/s, more is better)", 0),
]

T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23}

vals = defaultdict(dict)  # (contender, metric) -> {round: value}
errors = defaultdict(float)
for line in open(raw):
    parts = line.split()
    if len(parts) != 4:
        continue
    rnd, c, m, v = parts
    if m == "errors":
        errors[c] += float(v)
        continue
    try:
        vals[(c, m)][int(rnd)] = float(v)
    except ValueError:
        pass


def half95(xs):
    if len(xs) < 2:
        return None
    return T95.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / len(xs) ** 0.5


def cell(c, m, dec):
    xs = list(vals[(c, m)].values())
    if not xs:
        return "-"
    med, h = statistics.median(xs), half95(xs)
    s = f"{med:,.{dec}f}"
    return s + (f" ±{h:,.{dec}f}" if h is not None else "")


def ratios(a, b, m):
    """Per-round ratios a/b of metric m, over the rounds where both were measured."""
    ra, rb = vals[(a, m)], vals[(b, m)]
    return [ra[r] / rb[r] for r in sorted(ra) if r in rb and rb[r] > 0]


def ratio_stats(a, b, m):
    xs = ratios(a, b, m)
    if not xs:
        return None
    med, h = statistics.median(xs), half95(xs)
    mean = statistics.mean(xs)
    return med, (mean - h, mean + h) if h is not None else None


def ratio_cell(a, b, m):
    if m == "upload_growth_mb":
        return "-"  # a flatness check: a ratio of two near-zero numbers says nothing
    st = ratio_stats(a, b, m)
    if st is None:
        return "-"
    med, ci = st
    return f"{med:.2f}" + (f" ({ci[0]:.2f}-{ci[1]:.2f})" if ci else "")


print(open(meta).read().rstrip())
print("cells: median over the rounds ±half-width of a 95% interval; clawveil/nginx: median of the")
print("per-round ratios (95% interval of their mean); '-': not applicable or not measured")
print()
table = [["axis"] + CONTENDERS + ["clawveil/nginx"]]
for m, label, dec in ROWS:
    table.append([label] + [cell(c, m, dec) for c in CONTENDERS] + [ratio_cell("clawveil", "nginx", m)])
widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
for i, r in enumerate(table):
    print(" | ".join(x.ljust(widths[j]) if j == 0 else x.rjust(widths[j]) for j, x in enumerate(r)).rstrip())
    if i == 0:
        print("-+-".join("-" * w for w in widths))
print()

notes = []
for c in ["nginx", "caddy", "clawveil"]:
    f = vals[(c, "hs_resume_resumed")]
    if f:
        notes.append(f"{c} {statistics.median(f.values()):.0%}")
if notes:
    print("share of the 'resumed' handshakes that did resume: " + ", ".join(notes))
lates = [f"{c} {statistics.median(vals[(c, 'late_p99_us')].values()):.0f}"
         for c in CONTENDERS if vals[(c, "late_p99_us")]]
if lates:
    print("latency generator's own lateness, p99 of send time - due time (us): " + ", ".join(lates))
off, red = vals[("clawveil", "post_16k")], vals[("clawveil-redacted", "post_16k")]
if off and red:
    print(f"log.bodies (16 KiB POST, same rounds): off {statistics.median(off.values()):,.0f} req/s, "
          f"redacted {statistics.median(red.values()):,.0f} req/s, "
          f"redacted/off {ratio_cell('clawveil-redacted', 'clawveil', 'post_16k')}")
if vals[("direct", "cpu_us")]:
    print("direct's CPU per request is the upstream's own (one nginx worker, plain HTTP); the proxies'"
          " figures do not include the upstream's")
if errors:
    print("FAILED requests or measurements (their rows are suspect): "
          + ", ".join(f"{c} {n:.0f}" for c, n in sorted(errors.items())))
print()

print("goals (clawveil against nginx, medians of the per-round ratios; reported, never enforced):")


def goal(text, metric, test):
    st = ratio_stats("clawveil", "nginx", metric)
    if st is None:
        print(f"  NOT MEASURED  {text}")
        return
    med, ci = st
    ci_s = f", 95% {ci[0]:.2f}-{ci[1]:.2f}" if ci else ""
    print(f"  {'MET    ' if test(med) else 'NOT MET'}  {text}: {med:.2f}{ci_s}")


goal("h1 throughput >= 1.2x nginx (1 KiB)", "h1_1k", lambda r: r >= 1.2)
goal("h2 throughput >= 1.2x nginx (1 KiB)", "h2_1k", lambda r: r >= 1.2)
for m, label, _ in ROWS[:5]:
    goal(f"never below 1.0x: {label.split(' (')[0]}", m, lambda r: r >= 1.0)
goal("CPU per request <= 0.8x nginx", "cpu_us", lambda r: r <= 0.8)
goal("latency p99 <= nginx", "p99_us", lambda r: r <= 1.0)
goal("RSS per idle TLS connection <= nginx", "idle_kib", lambda r: r <= 1.0)
goal("full handshakes/s >= nginx", "hs_full", lambda r: r >= 1.0)
goal("resumed handshakes/s >= nginx", "hs_resume", lambda r: r >= 1.0)
g = vals[("clawveil", "upload_growth_mb")]
if g:
    worst = max(g.values())
    print(f"  {'MET    ' if worst <= 16 else 'NOT MET'}  RSS flat during the {UP} upload (growth <= 16 MB): "
          f"{worst:.1f} MB at most")
print()

print("per-round values (round: contender=value):")
for m, _, _ in ROWS:
    rounds = sorted({r for c in CONTENDERS + ["clawveil-redacted"] for r in vals[(c, m)]})
    for r in rounds:
        cs = [f"{c}={vals[(c, m)][r]:.6g}" for c in CONTENDERS + ["clawveil-redacted"] if r in vals[(c, m)]]
        print(f"  {m} round {r}: " + " ".join(cs))
