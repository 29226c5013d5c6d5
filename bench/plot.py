"""Latency against number of clients, as a small hand-made SVG (no plotting dependency)."""

from __future__ import annotations

import math
from typing import Any

W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 380, 70, 170, 40, 50
SERIES = [("relay_p99", "relay p99", "#c0392b", ""), ("relay_p50", "relay p50", "#e67e22", ""),
          ("direct_p99", "direct p99", "#2471a3", "6,4"),
          ("direct_p50", "direct p50", "#5dade2", "6,4")]


def latency_svg(curve: list[dict[str, Any]], size: str) -> str:
    xs = [row["clients"] for row in curve]
    ys = [row[key] for row in curve for key, *_ in SERIES if row.get(key)]
    x_lo, x_hi = math.log10(min(xs)), math.log10(max(xs)) or 1
    y_lo = math.floor(math.log10(max(min(ys), 0.01)))
    y_hi = math.ceil(math.log10(max(ys)))
    if y_hi == y_lo:
        y_hi += 1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - x_lo) / ((x_hi - x_lo) or 1) * pw

    def py(y: float) -> float:
        return TOP + ph - (math.log10(max(y, 10 ** y_lo)) - y_lo) / (y_hi - y_lo) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14">Fan-out latency vs SSE clients '
           f'(bench --size {size}; log scales)</text>']
    for e in range(y_lo, y_hi + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{10 ** e:g} ms</text>')
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{TOP + ph}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + ph + 18}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">'
               'concurrent SSE clients</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#888"/>')
    for i, (key, label, colour, dash) in enumerate(SERIES):
        points = " ".join(f"{px(r['clients']):.1f},{py(r[key]):.1f}" for r in curve)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                   f'stroke-width="2" stroke-dasharray="{dash}"/>')
        for r in curve:
            out.append(f'<circle cx="{px(r["clients"]):.1f}" cy="{py(r[key]):.1f}" r="3" '
                       f'fill="{colour}"/>')
        ly = TOP + 10 + i * 20
        out.append(f'<line x1="{W - RIGHT + 15}" y1="{ly}" x2="{W - RIGHT + 45}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{W - RIGHT + 50}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
