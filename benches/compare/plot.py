#!/usr/bin/env python3
"""The chart of a benches/compare.sh result: one group of bars per axis, each bar a
contender's median divided by nginx's, drawn from nginx's line at 1.0 on a log scale
(0.5x and 2x sit equally far from it). Reads only the text result, so any past result
can be re-plotted. The upload's RSS growth is left out: it is a flatness check (all
near zero), and a ratio of two near-zero numbers says nothing.

    plot.py RESULTS/<date>-<host>.txt OUT.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, out = sys.argv[1:3]
lines = open(src).read().splitlines()
head = [l for l in lines[:4] if l.startswith(("host:", "date:", "run:"))]
start = next(i for i, l in enumerate(lines) if l.startswith("axis "))
cols = [c.strip() for c in lines[start].split(" | ")]
rows = []
for l in lines[start + 2:]:
    if not l.strip():
        break
    rows.append([c.strip() for c in l.split(" | ")])


def num(s):
    try:
        return float(s.split()[0].replace(",", ""))
    except (ValueError, IndexError):
        return None


SHOW = ["caddy", "clawveil", "direct"]
COLOURS = {"caddy": "#4c9f70", "clawveil": "#d1495b", "direct": "#9a9a9a"}
axes, data = [], {c: [] for c in SHOW}
for r in rows:
    base = num(r[cols.index("nginx")])
    if not base or base <= 0 or "growth" in r[0]:
        continue
    label = r[0].replace(" (", "\n(", 1)
    axes.append(label)
    for c in SHOW:
        v = num(r[cols.index(c)])
        data[c].append(v / base if v is not None and v > 0 else None)

n = len(axes)
fig, ax = plt.subplots(figsize=(11, 0.62 * n * len(SHOW) / 2 + 2.2))
h = 0.8 / len(SHOW)
for k, c in enumerate(SHOW):
    ys = [i + (k - (len(SHOW) - 1) / 2) * h for i in range(n)]
    widths = [v - 1 if v is not None else 0 for v in data[c]]
    ax.barh(ys, widths, left=1, height=h, color=COLOURS[c], label=f"{c} / nginx")
    for y, v in zip(ys, data[c]):
        if v is not None:
            right = v >= 1
            ax.text(v * (1.03 if right else 0.97), y, f"{v:.2f}", va="center",
                    ha="left" if right else "right", fontsize=7)
ax.axvline(1.0, color="black", lw=1)
ax.set_xscale("log")
lo = min([v for c in SHOW for v in data[c] if v] + [0.5])
hi = max([v for c in SHOW for v in data[c] if v] + [2.0])
ax.set_xlim(lo / 1.5, hi * 1.6)
ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32) if lo / 1.5 <= t <= hi * 1.6]
ax.set_xticks(ticks)
ax.set_xticklabels([f"{t:g}x" for t in ticks])
ax.set_yticks(range(n))
ax.set_yticklabels(axes, fontsize=8)
ax.invert_yaxis()
ax.set_xlabel("ratio to nginx (1.0 = nginx; each label says whether more or less is better)")
ax.set_title("clawveil, Caddy and direct HTTP against nginx as a TLS reverse proxy\n"
             + "\n".join(head), fontsize=9)
ax.legend(loc="lower right", fontsize=8)
ax.grid(axis="x", which="major", alpha=0.3)
fig.tight_layout()
fig.savefig(out, dpi=110)
