"""An entity's network drawn as SVG on the server (issue 15 item 4): children's cases on
the left, people and places on the right, a line for each mention and a dashed one for each
plan action. Accessible: ``role="img"`` with a ``<title>`` and a ``<desc>`` saying in words
what the picture shows, so a screen reader gets the pattern without the drawing; the same
facts are in the graph's JSON (``GET /v1/entities/{id}/graph``). No script, no external
font or stylesheet: safe to serve and to embed in papers."""

from __future__ import annotations

from xml.sax.saxutils import escape

from mset_contract.entities import EntityGraph, GraphNode

WIDTH = 760
ROW = 70
TOP = 70
COLOURS = {
    "child": ("#1d70b8", "#ffffff"),  # GOV.UK blue
    "hidden": ("#b1b4b6", "#0b0c0c"),  # mid grey: exists, not shared
    "person": ("#d4351c", "#ffffff"),  # red
    "location": ("#00703c", "#ffffff"),  # green
}


def describe(graph: EntityGraph) -> str:
    children = [n for n in graph.nodes if n.kind in ("child", "hidden")]
    people = [n for n in graph.nodes if n.kind == "person"]
    places = [n for n in graph.nodes if n.kind == "location"]
    hidden = [n for n in children if n.kind == "hidden"]
    actions = [e for e in graph.edges if e.kind == "action"]
    parts = [
        f"{len(children)} children linked through {len(people)} "
        f"{'person' if len(people) == 1 else 'people'} and {len(places)} "
        f"{'place' if len(places) == 1 else 'places'} of concern"
    ]
    if hidden:
        parts.append(f"{len(hidden)} of the children in authorities that have not shared")
    if actions:
        parts.append(f"{len(actions)} plan {'action' if len(actions) == 1 else 'actions'}")
    return "; ".join(parts) + "."


def _box(node: GraphNode, x: int, y: int, w: int) -> str:
    fill, ink = COLOURS[node.kind]
    la = f" ({node.local_authority})" if node.local_authority and node.kind == "child" else ""
    label = escape(node.label + la)
    return (
        f'<g id="n-{escape(node.id)}"><rect x="{x}" y="{y - 20}" width="{w}" height="40" '
        f'rx="6" fill="{fill}"/><text x="{x + w // 2}" y="{y + 5}" fill="{ink}" '
        f'text-anchor="middle" font-family="Arial, sans-serif" font-size="14">{label}</text></g>'
    )


def render_network(graph: EntityGraph, title: str) -> str:
    left = [n for n in graph.nodes if n.kind in ("child", "hidden")]
    right = [n for n in graph.nodes if n.kind in ("person", "location")]
    rows = max(len(left), len(right), 1)
    height = TOP + rows * ROW + 20
    lx, rx, w = 40, WIDTH - 40 - 260, 260
    where: dict[str, tuple[int, int]] = {}
    for i, n in enumerate(left):
        where[n.id] = (lx + w, TOP + i * ROW + ROW // 2)
    offset = (len(left) - len(right)) * ROW // 2 if len(left) > len(right) else 0
    for i, n in enumerate(right):
        where[n.id] = (rx, TOP + offset + i * ROW + ROW // 2)
    lines = []
    for e in graph.edges:
        if e.source not in where or e.target not in where:
            continue
        (x1, y1), (x2, y2) = where[e.source], where[e.target]
        dash = ' stroke-dasharray="8 5"' if e.kind == "action" else ""
        bend = 24 if e.kind == "action" else 0
        lines.append(
            f'<path d="M{x1},{y1} C{x1 + 120},{y1 + bend} {x2 - 120},{y2 + bend} {x2},{y2}" '
            f'fill="none" stroke="#505a5f" stroke-width="2"{dash}/>'
        )
    boxes = [_box(n, lx, where[n.id][1], w) for n in left]
    boxes += [_box(n, rx, where[n.id][1], w) for n in right]
    desc = escape(describe(graph))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" aria-labelledby="network-title network-desc">'
        f'<title id="network-title">{escape(title)}</title>'
        f'<desc id="network-desc">{desc}</desc>'
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>'
        f'<text x="40" y="36" font-family="Arial, sans-serif" font-size="18" '
        f'font-weight="bold" fill="#0b0c0c">{escape(title)}</text>'
        f'<text x="40" y="56" font-family="Arial, sans-serif" font-size="13" '
        f'fill="#505a5f">Solid line: named in a tool. Dashed: a plan action.</text>'
        + "".join(lines)
        + "".join(boxes)
        + "</svg>"
    )
