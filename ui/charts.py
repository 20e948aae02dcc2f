"""Server-rendered SVG charts: bars (one series) and stacked bars (ok / failed).

Plain SVG strings with ``<title>`` on each bar (a tooltip and text for screen readers);
colours come from the page's CSS classes, so dark mode applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

W, H, PAD_L, PAD_B, PAD_T = 640, 220, 44, 34, 12


def _frame(title: str, body: list[str], top: float, unit: str) -> Markup:
    plot_h = H - PAD_B - PAD_T
    axis = [
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}"/>',
        f'<line class="axis" x1="{PAD_L}" y1="{H - PAD_B}" x2="{W}" y2="{H - PAD_B}"/>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + 10}" text-anchor="end">{_num(top)}{unit}</text>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + plot_h}" text-anchor="end">0</text>',
    ]
    return Markup(  # noqa: S704 - escaped parts
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(axis + body)}</svg>"
    )


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def bars(title: str, points: Sequence[tuple[str, float]], *, unit: str = "") -> Markup:
    """One bar per (label, value)."""
    if not points:
        return Markup('<p class="muted">No data yet.</p>')
    top = max(v for _, v in points) or 1.0
    plot_w, plot_h = W - PAD_L - 8, H - PAD_B - PAD_T
    step = plot_w / len(points)
    body = []
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top
        x = PAD_L + 4 + i * step
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h:.1f}"><title>{escape(label)}: {_num(value)}{escape(unit)}</title></rect>'
        )
        if len(points) <= 16 or i % 2 == 0:
            body.append(
                f'<text x="{x + step * 0.35:.1f}" y="{H - PAD_B + 14}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    return _frame(title, body, top, unit)


def stacked(title: str, points: Sequence[tuple[str, float, float]]) -> Markup:
    """(label, ok, failed) as a green bar with a red bar on top."""
    if not points:
        return Markup('<p class="muted">No data yet.</p>')
    top = max(ok + bad for _, ok, bad in points) or 1.0
    plot_w, plot_h = W - PAD_L - 8, H - PAD_B - PAD_T
    step = plot_w / len(points)
    body = []
    for i, (label, ok, bad) in enumerate(points):
        x = PAD_L + 4 + i * step
        h_ok, h_bad = plot_h * ok / top, plot_h * bad / top
        y_ok = PAD_T + plot_h - h_ok
        body.append(
            f'<rect class="bar ok" x="{x:.1f}" y="{y_ok:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h_ok:.1f}"><title>{escape(label)}: {_num(ok)} ok</title></rect>'
            f'<rect class="bar bad" x="{x:.1f}" y="{y_ok - h_bad:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h_bad:.1f}"><title>{escape(label)}: {_num(bad)} failed</title></rect>'
            f'<text x="{x + step * 0.35:.1f}" y="{H - PAD_B + 14}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return _frame(title, body, top, "")
