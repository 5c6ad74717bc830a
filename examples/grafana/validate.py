#!/usr/bin/env python3
"""Structural validation of the clawveil Grafana dashboard (run in CI).

    python3 examples/grafana/validate.py [DASHBOARD] [--metrics-md FILE] [--metrics-file FILE]
                                         [--require-promtool | --no-promtool]

Checks that the dashboard JSON parses and has the keys Grafana needs; that panel ids are
unique and every panel has a gridPos inside the 24-column grid, without overlaps; that
every non-row panel has targets with a datasource (the `${datasource}` variable) and a
PromQL expression; that every expression and variable query uses only clawveil metric
families listed in METRICS.md (and, with --metrics-file, served in a real /metrics
output), with labels those families carry; that legends only name labels the query keeps;
and, when promtool is installed, that every expression parses as PromQL (each one is
checked as a recording rule with `promtool check rules`, Grafana variables replaced by
sample values). Standard library only.

Prints one line per check and a closing `N passed, M failed`; exits 1 on any failure.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
METRICS_MD_CANDIDATES = [
    os.path.join(REPO, "docs", "METRICS.md"),
    os.path.join(REPO, "..", "shared", "design", "METRICS.md"),
]
# Labels Prometheus adds at scrape time (target labels), valid on every series.
TARGET_LABELS = {"instance", "job"}
# Values used for Grafana's variables when an expression is handed to promtool.
VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "6h",
    "instance": ".*",
    "route": ".*",
    "model": ".*",
    "datasource": "prometheus",
}
PROMQL_WORDS = {
    # functions, aggregations and keywords that may appear where a metric name could
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "rate", "irate", "increase", "delta", "idelta", "deriv",
    "histogram_quantile", "time", "vector", "scalar", "abs", "ceil", "floor", "round",
    "clamp", "clamp_min", "clamp_max", "label_replace", "label_join", "absent",
    "absent_over_time", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
    "count_over_time", "last_over_time", "changes", "resets", "sort", "sort_desc",
    "timestamp", "by", "without", "on", "ignoring", "group_left", "group_right", "and",
    "or", "unless", "bool", "offset", "inf", "nan", "le",
}


class Result:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}" + (f": {detail}" if detail else ""))
        return ok


def metrics_from_md(path):
    """{family: (type, {labels})} from the table of METRICS.md."""
    families = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\|\s*`(clawveil_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", line)
            if not m:
                continue
            name, kind, labels = m.group(1), m.group(2), m.group(3)
            labels = re.sub(r"\([^)]*\)", "", labels)  # drop "(https, http, egress)" and such
            families[name] = (kind, set(re.findall(r"`([a-z_][a-z0-9_]*)`", labels)))
    return families


def metrics_from_exposition(path):
    """{family: (type, {labels})} from a Prometheus text exposition."""
    families = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        families[name] = (kind, set())
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s", line)
        if not m:
            continue
        series, labels = m.group(1), m.group(2) or ""
        family = series
        for suffix in ("_bucket", "_sum", "_count"):
            if series.endswith(suffix) and series[: -len(suffix)] in families:
                family = series[: -len(suffix)]
        if family in families:
            families[family][1].update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', labels))
            families[family][1].discard("le")
    return families


def series_names(families):
    """Every series name a family exposes: histograms as _bucket, _sum and _count."""
    names = {}
    for name, (kind, labels) in families.items():
        if kind == "histogram":
            names[name + "_bucket"] = labels | {"le"}
            names[name + "_sum"] = set(labels)
            names[name + "_count"] = set(labels)
        else:
            names[name] = set(labels)
    return names


def substitute(expr):
    def repl(m):
        name = m.group(1) or m.group(2)
        return VARIABLES.get(name, m.group(0))

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def selectors(expr):
    """(metric, {label names}) of every `metric{...}` or bare clawveil metric in expr."""
    out = []
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", expr):
        name, body = m.group(1), m.group(2)
        if not name.startswith("clawveil_"):
            continue
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", body or ""))
        out.append((name, labels))
    return out


def grouping_labels(expr):
    labels = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels.update(x.strip() for x in m.group(1).split(",") if x.strip())
    return labels


def check_expr(res, where, expr, known, legend=None):
    used = selectors(expr)
    res.check(bool(used), f"{where}: uses a clawveil metric", expr)
    allowed = set(TARGET_LABELS)
    for name, labels in used:
        if not res.check(name in known, f"{where}: {name} exists", "not in METRICS.md"
                         + (" or the /metrics output" if known.get("__from_exposition") else "")):
            continue
        allowed |= known[name]
        bad = labels - known[name] - TARGET_LABELS
        res.check(not bad, f"{where}: labels of {name} exist", f"unknown label(s) {sorted(bad)}")
    # bare identifiers that look like metric names but are not clawveil's
    stripped = re.sub(r'"[^"]*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    others = {w for w in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", stripped)
              if not w.startswith("clawveil_") and w not in PROMQL_WORDS
              and not re.fullmatch(r"[0-9a-fA-Fx.e]+", w)}
    res.check(not others, f"{where}: no metrics other than clawveil_*", f"found {sorted(others)}")
    grouped = grouping_labels(expr)
    bad = grouped - allowed - {"le"}
    res.check(not bad, f"{where}: grouping labels exist", f"unknown label(s) {sorted(bad)}")
    if legend is not None and grouped:
        named = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        missing = named - grouped
        res.check(not missing, f"{where}: legend names only kept labels",
                  f"{legend!r} names {sorted(missing)}, not in by (...)")


def promtool_parses(res, where, expr, promtool):
    rule = {"groups": [{"name": "dashboard", "rules": [{"record": "dashboard:expr", "expr": expr}]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump(rule, f)  # JSON is YAML
        path = f.name
    try:
        p = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    detail = (p.stdout + p.stderr).strip().replace("\n", " | ")
    res.check(p.returncode == 0, f"{where}: parses as PromQL (promtool)", detail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dashboard", nargs="?", default=os.path.join(HERE, "clawveil.json"))
    ap.add_argument("--metrics-md", help="METRICS.md (default: docs/METRICS.md, else ../shared/design/METRICS.md)")
    ap.add_argument("--metrics-file", help="a real /metrics output: every family used must also be served there")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--require-promtool", action="store_true", help="fail when promtool is not installed")
    g.add_argument("--no-promtool", action="store_true", help="skip the PromQL parse check")
    args = ap.parse_args()
    res = Result()

    md = args.metrics_md or next((p for p in METRICS_MD_CANDIDATES if os.path.exists(p)), None)
    if not res.check(md is not None and os.path.exists(md), "METRICS.md found", f"looked in {METRICS_MD_CANDIDATES}"):
        return finish(res)
    contract = metrics_from_md(md)
    res.check(len(contract) >= 10, f"METRICS.md lists the clawveil families ({len(contract)} in {os.path.relpath(md)})")
    known = series_names(contract)
    if args.metrics_file:
        served = series_names(metrics_from_exposition(args.metrics_file))
        for name in sorted(known):
            res.check(name in served or not name.startswith("clawveil_"),
                      f"METRICS.md family {name} is announced by /metrics", "missing from " + args.metrics_file)
        # a family must be in both to be usable; labels: the contract's (a served family
        # may have no samples yet, so its labels are not all visible)
        known = {n: labels for n, labels in known.items() if n in served}
        known["__from_exposition"] = set()

    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dash = json.load(f)
        res.check(True, f"{os.path.relpath(args.dashboard)} parses as JSON")
    except (OSError, ValueError) as e:
        res.check(False, f"{args.dashboard} parses as JSON", str(e))
        return finish(res)

    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time", "tags"):
        res.check(key in dash, f"dashboard has {key!r}")
    res.check(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36,
              "schemaVersion is a current one (>= 36)", repr(dash.get("schemaVersion")))

    # --- variables
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    res.check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
              "variable datasource: a Prometheus datasource variable")
    for name in ("route", "model"):
        v = variables.get(name)
        if not res.check(v is not None and v.get("type") == "query", f"variable {name}: a query variable"):
            continue
        q = v.get("definition") or (v.get("query") or {}).get("query", "")
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
        if not res.check(m is not None and m.group(2) == name, f"variable {name}: label_values(..., {name})", q):
            continue
        check_expr(res, f"variable {name}", m.group(1), known)
        metric = selectors(m.group(1))[0][0] if selectors(m.group(1)) else None
        res.check(metric in known and name in known.get(metric, set()),
                  f"variable {name}: {metric} carries the label {name}")
        res.check((v.get("datasource") or {}).get("uid") == "${datasource}", f"variable {name}: uses ${{datasource}}")
    for name, v in variables.items():
        if v.get("type") == "query" and name not in ("route", "model"):
            q = v.get("definition") or (v.get("query") or {}).get("query", "")
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
            if res.check(m is not None, f"variable {name}: label_values(...)", q):
                check_expr(res, f"variable {name}", m.group(1), known)

    # --- panels
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))  # panels inside collapsed rows
    ids = [p.get("id") for p in panels]
    dupes = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    res.check(not dupes and all(isinstance(i, int) for i in ids), f"{len(ids)} panel ids are unique integers", f"duplicates {dupes}")

    boxes = []
    for p in panels:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        gp = p.get("gridPos", {})
        ok = all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")) and gp["x"] >= 0 and gp["w"] > 0 \
            and gp["h"] > 0 and gp["x"] + gp["w"] <= 24
        res.check(ok, f"{where}: gridPos inside the 24-column grid", repr(gp))
        if ok:
            boxes.append((where, gp))
        if p.get("type") == "row":
            continue
        res.check(bool(p.get("title")), f"{where}: has a title")
        targets = p.get("targets") or []
        if not res.check(bool(targets), f"{where}: has targets"):
            continue
        refs = [t.get("refId") for t in targets]
        res.check(len(set(refs)) == len(refs) and all(refs), f"{where}: refIds unique", repr(refs))
        for t in targets:
            tw = f"{where} {t.get('refId')}"
            tds = t.get("datasource") or p.get("datasource") or {}
            res.check(tds.get("uid") == "${datasource}" and tds.get("type", "prometheus") == "prometheus",
                      f"{tw}: datasource is ${{datasource}}", repr(tds))
            expr = t.get("expr", "")
            if not res.check(bool(expr.strip()), f"{tw}: has an expr"):
                continue
            check_expr(res, tw, expr, known, t.get("legendFormat"))
            t["_expr"] = expr
    for i, (wa, a) in enumerate(boxes):
        for wb, b in boxes[i + 1:]:
            overlap = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
            if overlap:
                res.check(False, f"{wa} and {wb} do not overlap", f"{a} {b}")
    res.check(True, f"{len(boxes)} panels checked for overlaps")

    # --- PromQL syntax, by promtool
    promtool = None if args.no_promtool else shutil.which("promtool")
    if promtool:
        for p in panels:
            for t in p.get("targets") or []:
                if "_expr" in t:
                    promtool_parses(res, f"panel {p['id']} {t.get('refId')}", substitute(t["_expr"]), promtool)
        for name, v in variables.items():
            if v.get("type") == "query":
                q = v.get("definition") or (v.get("query") or {}).get("query", "")
                m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
                if m:
                    promtool_parses(res, f"variable {name}", substitute(m.group(1)), promtool)
    elif args.require_promtool:
        res.check(False, "promtool installed", "apt-get install prometheus (Debian/Ubuntu ships promtool with it)")
    else:
        print("note  promtool not found: PromQL syntax not checked (apt-get install prometheus; --require-promtool makes this fail)")
    return finish(res)


def finish(res):
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
