#!/usr/bin/env python3
"""Plot B2 and B6 throughput and p99 latency against concurrency from `stayledger bench --json FILE`.

Usage: python3 bench/plot.py OUT.svg RUN.json [MORE.json ...] [--table]
Standard library only: writes a self-contained SVG with two panels (req/s, p99 ms) on log2 x axes.
Several JSON files (e.g. `--only B2,B4` and `--only B6` run separately) are merged: a later file's
figures and sweep points replace an earlier file's with the same id. `--table` also prints the
merged figures as the Markdown table of docs/benchmarks.md.
"""

import json
import math
import sys

W, H = 900, 380
PANEL_W, PANEL_H = 360, 260
MARGIN_L, MARGIN_T = 70, 50
GAP = 90
COLORS = {"B2": "#1f77b4", "B6": "#d62728"}
LABELS = {"B2": "B2 POST /reservations", "B6": "B6 GET /reservations/{id}"}
TARGETS = {  # (throughput target, p99 target) drawn as dashed lines
    "B2": (10_000, 25),
    "B6": (20_000, 10),
}


def nice_max(value):
    if value <= 0:
        return 1
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(x0, title, series, key, unit, targets):
    concurrencies = sorted({p["concurrency"] for pts in series.values() for p in pts})
    if not concurrencies:
        return []
    lo, hi = math.log2(max(1, min(concurrencies))), math.log2(max(concurrencies))
    hi = hi if hi > lo else lo + 1
    top = nice_max(max([p[key] for pts in series.values() for p in pts] + list(targets.values())) * 1.1)

    def px(c):
        return x0 + (math.log2(max(c, 1)) - lo) / (hi - lo) * PANEL_W

    def py(v):
        return MARGIN_T + PANEL_H - v / top * PANEL_H

    out = [f'<text x="{x0 + PANEL_W / 2}" y="{MARGIN_T - 18}" text-anchor="middle" font-weight="bold">{esc(title)}</text>',
           f'<rect x="{x0}" y="{MARGIN_T}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#888"/>']
    for i in range(6):
        v = top * i / 5
        y = py(v)
        label = f"{v:,.0f}" if top >= 10 else f"{v:.1f}"
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y}" y2="{y}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" font-size="11">{label}</text>')
    for c in concurrencies:
        out.append(f'<text x="{px(c)}" y="{MARGIN_T + PANEL_H + 16}" text-anchor="middle" font-size="11">{c}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{MARGIN_T + PANEL_H + 34}" text-anchor="middle" font-size="12">concurrent clients (connections)</text>')
    out.append(f'<text x="{x0 - 52}" y="{MARGIN_T + PANEL_H / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 {x0 - 52} {MARGIN_T + PANEL_H / 2})">{esc(unit)}</text>')
    for sid, pts in series.items():
        color = COLORS.get(sid, "#333")
        if sid in targets:
            y = py(targets[sid])
            out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y}" y2="{y}" stroke="{color}" stroke-dasharray="5,4" opacity="0.7"/>')
        pts = sorted(pts, key=lambda p: p["concurrency"])
        path = " ".join(f"{px(p['concurrency']):.1f},{py(p[key]):.1f}" for p in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for p in pts:
            out.append(f'<circle cx="{px(p["concurrency"]):.1f}" cy="{py(p[key]):.1f}" r="3.5" fill="{color}"/>')
    return out


def merge(paths):
    report, figures, sweeps = {}, {}, {}
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        report = {**{k: v for k, v in run.items() if k not in ("figures", "sweeps")}, **report}
        ids = {fig["id"] for fig in run.get("figures", [])}
        for key in [k for k in figures if k[0] in ids]:
            del figures[key]
        for n, fig in enumerate(run.get("figures", [])):
            figures[(fig["id"], path, n)] = fig
        swept = {p["id"] for p in run.get("sweeps", [])}
        sweeps = {k: v for k, v in sweeps.items() if k[0] not in swept}
        for p in run.get("sweeps", []):
            sweeps[(p["id"], p["concurrency"])] = p
    order = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "peer"]
    rank = lambda fig: order.index(fig["id"]) if fig["id"] in order else len(order)
    report["figures"] = sorted(figures.values(), key=rank)
    report["sweeps"] = list(sweeps.values())
    return report


def table(report):
    lines = ["| id | what | figure | target | met |", "|---|---|---|---|---|"]
    for fig in report["figures"]:
        met = {True: "yes", False: "**no**", None: "-"}[fig.get("met")]
        lines.append(f'| {fig["id"]} | {fig["what"]} | {fig["figure"]} | {fig["target"]} | {met} |')
    return "\n".join(lines)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) < 2:
        sys.exit(__doc__)
    out, inputs = args[0], args[1:]
    report = merge(inputs)
    if "--table" in sys.argv:
        print(table(report))
    series = {}
    for point in report.get("sweeps", []):
        series.setdefault(point["id"], []).append(point)
    if not series:
        sys.exit("no sweeps in the report (run B2/B6 without --quick, or with --concurrency)")
    body = panel(MARGIN_L, "Throughput", series, "per_sec", "requests/s",
                 {k: v[0] for k, v in TARGETS.items() if k in series})
    body += panel(MARGIN_L + PANEL_W + GAP, "p99 latency", series, "p99_ms", "p99 (ms)",
                  {k: v[1] for k, v in TARGETS.items() if k in series})
    legend_y = H - 18
    x = MARGIN_L
    for sid in sorted(series):
        body.append(f'<rect x="{x}" y="{legend_y - 10}" width="14" height="4" fill="{COLORS.get(sid, "#333")}"/>')
        body.append(f'<text x="{x + 20}" y="{legend_y - 4}" font-size="12">{esc(LABELS.get(sid, sid))}</text>')
        x += 260
    body.append(f'<text x="{x}" y="{legend_y - 4}" font-size="12">dashed: target</text>')
    machine = report.get("machine", {})
    subtitle = f'{machine.get("cpus", "?")} CPUs, {machine.get("cpu_model") or "?"}; started {report.get("started_at", "?")}'
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="13">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="11" fill="#555">{esc(subtitle)}</text>']
    svg += body + ["</svg>"]
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
