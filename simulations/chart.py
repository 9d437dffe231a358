"""Delivery and pacing per package, drawn from the result JSON alone: an HTML page with
inline SVG (no scripts, no CDN: it renders offline and in any mail client), and a PNG
when matplotlib happens to be installed (it is not a dependency)."""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path
from typing import Any

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 215, 30, 40

Series = tuple[str, list[float]]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 10
    for factor in (1, 2, 2.5, 5, 10):
        if value <= step * factor:
            return step * factor
    return value


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:.0f}"


def line_chart(
    title: str,
    series: list[Series],
    days: int,
    *,
    reference: list[float] | None = None,
    paused: set[int] | None = None,
    marks: list[int] | None = None,
) -> str:
    """An SVG line chart over flight days 1..days. ``reference`` is drawn dashed (the
    even-pacing line), ``paused`` days are shaded, ``marks`` are end-of-day events."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = _nice_max(max([v for _, ys in series for v in ys] + (reference or []) + [0.0]))

    def x(day: float) -> float:
        return LEFT + (day - 0.5) / days * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - value / peak * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for day in sorted(paused or ()):
        out.append(
            f'<rect x="{x(day - 0.5):.1f}" y="{TOP}" width="{plot_w / days:.1f}" '
            f'height="{plot_h}" fill="#eee"><title>paused</title></rect>'
        )
    for i in range(5):
        value = peak * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#ddd"/><text x="{LEFT - 6}" y="{y(value) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{_fmt(value)}</text>'
        )
    for day in range(1, days + 1):
        out.append(
            f'<text x="{x(day):.1f}" y="{TOP + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{day}</text>'
        )
    out.append(
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" font-size="10" '
        'text-anchor="middle">flight day</text>'
    )
    for day in marks or []:
        out.append(
            f'<line x1="{x(day + 0.5):.1f}" x2="{x(day + 0.5):.1f}" y1="{TOP}" '
            f'y2="{TOP + plot_h}" stroke="#888" stroke-dasharray="2,3"/>'
            f'<text x="{x(day + 0.5) + 3:.1f}" y="{TOP + 10}" font-size="9" '
            'fill="#555">feedback</text>'
        )
    for i, (label, ys) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in enumerate(ys, 1))
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [
            f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"/>'
            for d, v in enumerate(ys, 1)
        ]
        ly = TOP + 12 + i * 16
        out.append(
            f'<rect x="{LEFT + plot_w + 12}" y="{ly - 8}" width="10" height="10" '
            f'fill="{color}"/><text x="{LEFT + plot_w + 26}" y="{ly + 1}" '
            f'font-size="11">{html.escape(label)}</text>'
        )
    if reference:
        points = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in enumerate(reference, 1))
        out.append(
            f'<polyline points="{points}" fill="none" stroke="#555" stroke-dasharray="6,4"/>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _charts(journey: dict[str, Any], days: int) -> tuple[str, str]:
    packages = [p for b in journey["buys"] for p in b["packages"]]
    names = [f"{p['key']} {p['product_id']}" for p in packages]
    paused = {d["day"] for p in packages for d in p["days"] if d["paused"]}
    marks = sorted({int(f["day"]) for f in journey["feedback"]})
    delivery = line_chart(
        "Daily impressions per package",
        [
            (n, [float(d["impressions"]) for d in p["days"]])
            for n, p in zip(names, packages, strict=True)
        ],
        days,
        paused=paused,
        marks=marks,
    )
    pacing = line_chart(
        "Pacing: cumulative spend, % of budget (dashed: even pace)",
        [
            (n, [100 * d["cum_spend"] / p["budget"] for d in p["days"]])
            for n, p in zip(names, packages, strict=True)
        ],
        days,
        reference=[100 * d / days for d in range(1, days + 1)],
        paused=paused,
        marks=marks,
    )
    return delivery, pacing


def _table(journey: dict[str, Any]) -> str:
    rows = []
    for buy in journey["buys"]:
        for p in buy["packages"]:
            final = p["final"]
            spend = float(final.get("spend", 0))
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(v))}</td>"
                    for v in (
                        p["key"],
                        p["product_id"],
                        buy["kind"],
                        f"{p['budget']:,.2f}",
                        f"{spend:,.2f}",
                        f"{100 * spend / p['budget']:.0f}%",
                        f"{int(final.get('impressions', 0)):,}",
                        final.get("delivery_status", "-"),
                        p["performance_index"] if p["performance_index"] is not None else "-",
                    )
                )
                + "</tr>"
            )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("pkg", "product", "buy", "budget", "spend", "of budget", "impressions",
                  "status", "feedback index")
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(result: dict[str, Any]) -> str:
    sim = result["simulation"]
    days = int(sim["days"])
    sections = []
    for j in result["journeys"]:
        state = "completed" if j["completed"] else f"failed: {j['failure']}"
        body = f"<h2>{html.escape(j['buyer'])} · {html.escape(j['brand'])}</h2>"
        body += f"<p>{html.escape(state)}</p>"
        if any(p["days"] for b in j["buys"] for p in b["packages"]):
            delivery, pacing = _charts(j, days)
            body += f'<div class="charts">{delivery}{pacing}</div>'
        sections.append(body + _table(j))
    title = f"adcp-agent simulation: {sim['scenario']} (seed {sim['seed']})"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0 24px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}"
        ".charts svg{margin:4px 12px 4px 0}code{background:#f4f4f4;padding:1px 4px}"
        f"</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(sim['description'])}</p><p>Flight {sim['flight']['start']} → "
        f"{sim['flight']['end']} · {sim['buyers']} buyer(s) · fingerprint "
        f"<code>{result['fingerprint']}</code> · delivery fingerprint "
        f"<code>{result['delivery_fingerprint']}</code> · total spend "
        f"{result['totals']['spend']:,.2f} of {result['totals']['budget']:,.2f} · "
        f"{result['totals']['impressions']:,} impressions</p>"
        + "".join(sections)
        + "</body></html>\n"
    )


def write_png(result: dict[str, Any], path: Path) -> bool:
    """The same two charts per buyer as a PNG, only if matplotlib is installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    journeys = [j for j in result["journeys"] if j["buys"] and j["buys"][0]["packages"][0]["days"]]
    if not journeys:
        return False
    fig, axes = plt.subplots(len(journeys), 2, figsize=(13, 3.6 * len(journeys)), squeeze=False)
    for row, j in zip(axes, journeys, strict=True):
        for p in (p for b in j["buys"] for p in b["packages"]):
            days = [d["day"] for d in p["days"]]
            label = f"{p['key']} {p['product_id']}"
            row[0].plot(days, [d["impressions"] for d in p["days"]], marker="o", label=label)
            share = [100 * d["cum_spend"] / p["budget"] for d in p["days"]]
            row[1].plot(days, share, marker="o", label=label)
        n = int(result["simulation"]["days"])
        row[1].plot(range(1, n + 1), [100 * d / n for d in range(1, n + 1)], "k--", lw=0.8)
        row[0].set_title(f"{j['buyer']}: daily impressions")
        row[1].set_title(f"{j['buyer']}: cumulative spend, % of budget")
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
