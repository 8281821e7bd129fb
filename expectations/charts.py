"""Small inline SVG charts for the quality report: no script, no download, readable offline."""

from __future__ import annotations

from html import escape

COLOURS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#7a4fa3", "#00798c")


def _svg_open(title: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    )


def line_chart(
    title: str, labels: list[str], series: dict[str, list[float | None]], low: float = 0.0
) -> str:
    """One line a series over `labels` (runs), y from `low` to 1; no point where a value is None
    (hidden, or not measured in that run), the line joining the points either side."""
    width, height, left, bottom, top = 560, 200, 44, 28, 24
    plot_w, plot_h = width - left - 150, height - top - bottom
    step = plot_w / max(len(labels) - 1, 1)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (1 - low))

    parts = [
        _svg_open(title, width, height),
        f'<text x="{left}" y="14" class="chart-title">{escape(title)}</text>',
    ]
    for tick in (low, (low + 1) / 2, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"'
            f' class="grid"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end"'
            f' class="tick">{tick:.2f}</text>'
        )
    for index, label in enumerate(labels):
        if len(labels) <= 12 or index in (0, len(labels) - 1):
            parts.append(
                f'<text x="{left + index * step:.1f}" y="{height - 8}" text-anchor="middle"'
                f' class="tick">{escape(label)}</text>'
            )
    for number, (name, values) in enumerate(series.items()):
        colour = COLOURS[number % len(COLOURS)]
        points = [
            (left + index * step, y(value))
            for index, value in enumerate(values)
            if value is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{py:.1f}" for x, py in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, py in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        legend_y = top + 16 * number
        parts.append(
            f'<rect x="{left + plot_w + 16}" y="{legend_y}" width="10" height="10"'
            f' fill="{colour}"/><text x="{left + plot_w + 32}" y="{legend_y + 9}"'
            f' class="legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, bars: list[tuple[str, int | None]], hidden: str = "hidden") -> str:
    """Horizontal bars, one a label, with its count; no bar, and `hidden`, for a count hidden."""
    row, left, width = 22, 260, 560
    height = 30 + row * max(len(bars), 1)
    most = max((count for _, count in bars if count is not None), default=1) or 1
    parts = [
        _svg_open(title, width, height),
        f'<text x="4" y="14" class="chart-title">{escape(title)}</text>',
    ]
    for index, (label, count) in enumerate(bars):
        top = 24 + index * row
        length = (width - left - 60) * (count or 0) / most
        parts.append(
            f'<text x="{left - 6}" y="{top + 13}" text-anchor="end" class="legend">'
            f'{escape(label)}</text><rect x="{left}" y="{top + 2}" width="{length:.1f}"'
            f' height="{row - 6}" fill="{COLOURS[0]}"/><text x="{left + length + 6:.1f}"'
            f' y="{top + 13}" class="legend">{hidden if count is None else count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
