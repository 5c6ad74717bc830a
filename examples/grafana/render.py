#!/usr/bin/env python3
"""Plots the main panels of clawveil.json from a running Prometheus (for the README).

    render.py --prometheus http://127.0.0.1:9090 --start UNIX --end UNIX --out docs/dashboard.png

The expressions are read from the dashboard, Grafana's variables replaced ($instance,
$route, $model: everything; $__rate_interval: --rate-interval), and queried with
/api/v1/query_range; each panel becomes one plot of a 2x3 grid, titled as in the
dashboard. Needs matplotlib (Debian: apt-get install python3-matplotlib).
"""

import argparse
import json
import os
import re
import sys
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The six panels of the picture, by id in clawveil.json.
PANELS = [5, 6, 7, 8, 10, 11]
UNITS = {"reqps": "per second", "ops": "per second", "s": "seconds", "d": "days", "short": "", "percentunit": ""}
BG, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a",
          "#96d98d", "#ff9830", "#c4162a", "#8f3bb8"]


def substitute(expr, rate_interval):
    values = {"__rate_interval": rate_interval, "__interval": "2s", "instance": ".*", "route": ".*", "model": ".*"}
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), expr)


def query_range(base, expr, start, end, step):
    qs = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{qs}", timeout=30) as r:
        data = json.load(r)
    if data.get("status") != "success":
        raise RuntimeError(f"{expr}: {data}")
    return data["data"]["result"]


def legend(fmt, labels):
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt or "") or str(labels)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--end", type=float, required=True)
    ap.add_argument("--step", default="2")
    ap.add_argument("--rate-interval", default="15s")
    ap.add_argument("--dashboard", default=os.path.join(HERE, "clawveil.json"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    dash = json.load(open(a.dashboard, encoding="utf-8"))
    by_id = {p["id"]: p for p in dash["panels"]}
    plt.rcParams.update({"font.size": 9, "text.color": TEXT, "axes.labelcolor": TEXT,
                         "xtick.color": TEXT, "ytick.color": TEXT, "axes.edgecolor": GRID})
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.4), dpi=110, facecolor=BG)
    empty = []
    for ax, pid in zip(axes.flat, PANELS):
        panel = by_id[pid]
        labelled = set()
        ax.set_facecolor(PANEL)
        ax.grid(True, color=GRID, linewidth=0.6)
        ax.set_title(panel["title"], loc="left", fontsize=11, color=TEXT, pad=6)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_ylabel(UNITS.get(unit, unit))
        n, colors, styles = 0, {}, {"p50": "-", "p95": "--", "p99": ":"}
        for target in panel["targets"]:
            expr = substitute(target["expr"], a.rate_interval)
            for series in query_range(a.prometheus, expr, a.start, a.end, a.step):
                pts = [(float(t) - a.start, float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")]
                if not pts or not any(y for _, y in pts):
                    continue  # series that never left 0 (pre-created ones) would only crowd the legend
                xs, ys = zip(*pts)
                name = legend(target.get("legendFormat"), series["metric"])
                # quantile panels: one colour per route or model, one line style per quantile
                m = re.fullmatch(r"(.*) (p50|p95|p99)", name)
                base, style = (m.group(1), styles[m.group(2)]) if m else (name, "-")
                if base not in colors:
                    colors[base] = COLORS[len(colors) % len(COLORS)]
                ax.plot(xs, ys, linewidth=1.4, color=colors[base], linestyle=style,
                        label=base if (not m or base not in labelled) else None)
                labelled.add(base)
                n += 1
        if any(s != "-" for s in [line.get_linestyle() for line in ax.get_lines()]):
            for q, st in styles.items():
                ax.plot([], [], color=TEXT, linestyle=st, linewidth=1.2, label=q)
        if n == 0:
            empty.append(panel["title"])
        ax.set_xlim(0, a.end - a.start)
        # head room above the data for the legend, which sits in the upper left
        top = max((max(line.get_ydata(), default=0) for line in ax.get_lines()), default=0)
        entries = len(ax.get_legend_handles_labels()[1])
        rows = entries if entries <= 5 else (entries + 1) // 2
        ax.set_ylim(0, (top or 1) * (1.15 + 0.09 * rows))
        ax.xaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10], integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(x)}s"))
        if n:
            ax.legend(fontsize=7.5, loc="upper left", ncol=2 if len(ax.get_legend_handles_labels()[1]) > 5 else 1, facecolor=PANEL,
                      edgecolor=GRID, labelcolor=TEXT, framealpha=0.85)
    fig.suptitle(f"{dash['title']} — {len(PANELS)} panels of examples/grafana/clawveil.json against a real Prometheus "
                 f"(scraped every 1 s, rate over {a.rate_interval}; x: seconds of generated traffic; series that stayed at 0 not drawn)",
                 color=TEXT, fontsize=10.5, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.965))
    fig.savefig(a.out, facecolor=BG)
    print(f"wrote {a.out}")
    if empty:
        print("panels without data: " + ", ".join(empty), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
