"""`--format html`: the explorer, one self-contained page (works from file://, makes no network request).

The page holds the Graphviz SVG of the graph (and of its layers collapsed, when it has layers), the data its
script needs as JSON, the script and svg-pan-zoom 3.6.2 (vendored with its BSD-2-Clause licence, which the
page carries too), all inlined. It reads a finished Graph: hover texts, the chain rule written out for each
input (`gradviz explain`'s own text) and the backprop steps (`gradviz.steps`) are computed here, once, so
the page only shows them.

Numbers are embedded at full precision (JSON's shortest round-trip form). An array larger than EMBEDDED_ARRAY
elements is embedded as its min, max and norm plus a heatmap of block means, which keeps the spiral
network's page under 2 MB where its JSON file is 6 MB.
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
from importlib.resources import files
from typing import Any

import numpy as np

from ...graph import Graph
from ...rounding import magnitudes
from ...steps import Step, backward_steps
from .. import format as fmt
from ..clusters import plan
from ..dot import BAD, EDGE, FADED, MUTED, NONDIFF, STYLES, TANGENT, WRT, ZERO, to_dot

EMBEDDED_ARRAY = 64  # arrays up to this many elements are embedded whole; larger ones as a heatmap
HEAT_CELLS = 64  # a heatmap has at most this many rows and columns of block means
MAX_PATHS = 20  # the chain rule is written out for this many paths, as `gradviz explain` lists by default

_EDGE_LINE = re.compile(r"^(\s*)n(\d+) -> n(\d+) \[")
# Graphviz's own ids, and the font named on every text element (the page's style names it once)
_AUTO_ID = re.compile(r' id="(?:graph|node|edge|clust|a_)[^"]*"| font-family="[^"]*"')

# the figure's colours in dark mode: the same hue for the same meaning, darker fills and lighter lines
DARK = {
    "#ffffff": "#111827", "white": "#111827",
    "#000000": "#e5e7eb", "black": "#e5e7eb",
    STYLES["leaf"][2]: "#1e3a5f", STYLES["leaf"][3]: "#60a5fa",
    STYLES["const"][2]: "#374151", STYLES["const"][3]: "#9ca3af",
    STYLES["op"][2]: "#4a3410", STYLES["op"][3]: "#f59e0b",
    STYLES["output"][2]: "#14401f", STYLES["output"][3]: "#4ade80",
    EDGE: "#cbd5e1", ZERO: "#4b5563", BAD: "#f87171", NONDIFF: "#fb923c", WRT: "#a78bfa", FADED: "#374151",
    MUTED: "#9ca3af", TANGENT: "#22d3ee",
}


def to_html(graph: Graph, rankdir: str | None = None, wrt: str | None = None, collapse: bool = False,
            steps: bool = False) -> tuple[str, str]:
    """The explorer page for graph; returns (page, renderer). wrt opens it with that input selected,
    collapse with the layers collapsed, steps on the step control at step 0."""
    from ..render import fitted, render

    expanded, renderer, rankdir = fitted(lambda direction: _with_edge_ids(graph, to_dot(graph, direction)), "svg",
                                         rankdir)
    drawings = {"expanded": _clean(expanded)}
    if plan(graph).blocks:
        drawings["collapsed"] = _clean(render(to_dot(graph, rankdir, collapse=True), "svg")[0])
    data = page_data(graph)
    data["start"] = {"view": "collapsed" if collapse and "collapsed" in drawings else "expanded",
                     "select": wrt, "step": 0 if steps else None}
    title = graph.source or "graph"
    figures = "\n".join(f'<div class="drawing" data-view="{name}" hidden>{svg}</div>' for name, svg in drawings.items())
    parts = {"title": html.escape(title), "style": _asset("explorer.css") + _dark_css(), "figures": figures,
             "data": _script_json(data), "panzoom": _asset("svg-pan-zoom.min.js"),
             "panzoom_licence": _asset("svg-pan-zoom.LICENSE").replace("*/", "* /"), "script": _asset("explorer.js")}
    # one pass over the template: text put in (a label, a file name) is never searched for {{...}} again
    page = re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], _asset("page.html"))
    return page, renderer


def page_data(graph: Graph) -> dict:
    """What the page's script reads: nodes, edges, inputs with their chain rule written out, steps."""
    layers = plan(graph)
    outputs = graph.output_ids()
    nodes = [{"label": graph.label(n.id), "kind": "output" if n.id in outputs else n.kind, "op": n.op,
              "shape": list(np.shape(n.value)), "value": _numbers(n.value),
              "grad": None if n.kind == "const" else _numbers(n.grad), "nondiff": bool(n.nondiff),
              "cluster": _cluster(graph, n.id), "drawn": layers.shown[n.id]} for n in graph.nodes]
    edges = [{"src": e.src, "dst": e.dst, "rule": fmt.partial(graph, e), "local": _numbers(e.local),
              "upstream": _numbers(e.upstream), "chain": _numbers(e.chain),
              "const": graph.nodes[e.src].kind == "const"} for e in graph.edges]
    if graph.wrt is not None:  # forward mode ran: ∂node/∂wrt on every node, each edge's share of it
        for item, obj in zip(nodes + edges, graph.nodes + graph.edges, strict=True):
            item["tangent"] = _numbers(obj.tangent)
    all_steps = backward_steps(graph)
    return {
        "granularity": graph.granularity, "outputs": outputs, "wrt": graph.wrt,
        "nodes": nodes, "edges": edges,
        "leaves": {name: np.ravel(ref).astype(int).tolist() for name, ref in graph.leaves.items()},
        "explain": _explanations(graph),
        "steps": [{"node": s.node, "edges": list(s.edges), "visited": s.visited,
                   "caption": caption(graph, all_steps, k)} for k, s in enumerate(all_steps)],
    }


def caption(graph: Graph, steps: list[Step], k: int) -> str:
    """What step k of backprop did, in words."""
    step = steps[k]
    node = graph.nodes[step.node]
    m = magnitudes(graph)
    name = graph.label(step.node)
    head = f"step {k} of {len(steps) - 1}: "
    if not step.edges:
        return head + (f"the output {name} starts backward with grad = {fmt.value(node.grad, m.grad[step.node])} "
                       "(the seed)")
    chains = " + ".join(fmt.value(graph.edges[i].chain, m.chain[i]) for i in step.edges)
    uses = "its one use" if len(step.edges) == 1 else f"its {len(step.edges)} uses"
    grad = fmt.value(node.grad, m.grad[step.node])
    total = f"{chains} = {grad}" if len(step.edges) > 1 else grad
    return head + f"grad of {name} is complete: the chain from {uses} gives {total}"


def _explanations(graph: Graph) -> dict[str, dict]:
    """For every input (each leaf, and each element of an array leaf): `gradviz explain --wrt NAME`'s text,
    its sum and how many paths there are. Paths are a scalar-granularity notion: none at tensor granularity."""
    if graph.granularity != "scalar":
        return {}
    from ...inputs import Input
    from ...paths import explain
    from ..explain import explain_text

    out: dict[str, dict] = {}
    for leaf, ref in graph.leaves.items():
        shape = np.shape(ref)
        for idx in np.ndindex(shape):
            ex = explain(graph, Input(leaf, idx))
            with np.errstate(all="ignore"):  # a path through inf and 0 has a NaN product: the text says so
                text = explain_text(graph, ex, MAX_PATHS).plain
            out[ex.wrt] = {"text": text, "totals": [_scalar(ex.total)], "paths": ex.n_paths}
        if shape:  # an array leaf: the page joins its elements' texts, as the command prints them one by one
            out[leaf] = {"elements": [Input(leaf, idx).label for idx in np.ndindex(shape)]}
    return out


def _cluster(graph: Graph, node_id: int) -> str | None:
    where = graph.cluster_of(node_id)
    return None if where is None else f"{where[0]} (call {where[1] + 1})"


def _numbers(v: Any) -> Any:
    """A number at full precision (JSON's shortest round-trip form), "nan"/"inf"/"-inf", None, or an array as
    {shape, min, max, norm} plus its elements (up to EMBEDDED_ARRAY) or a heatmap of block means."""
    if v is None:
        return None
    arr = np.asarray(v, dtype=float)
    if arr.ndim == 0:
        return _scalar(float(arr))
    out: dict[str, Any] = {"shape": list(arr.shape)}
    finite = arr[np.isfinite(arr)]
    out.update(min=_scalar(float(finite.min())) if finite.size else None,
               max=_scalar(float(finite.max())) if finite.size else None,
               norm=_scalar(float(np.linalg.norm(arr.ravel()))), bad=int(arr.size - finite.size))
    if arr.size <= EMBEDDED_ARRAY:
        out["data"] = [_scalar(x) for x in arr.ravel().tolist()]
    else:
        out["heat"] = _heatmap(arr)
    return out


def _scalar(x: float) -> Any:
    return x if math.isfinite(x) else str(x)


def _heatmap(arr: np.ndarray) -> dict:
    """The array as a grid of at most HEAT_CELLS × HEAT_CELLS block means (rows: the first axis, columns: the
    rest flattened), scaled to 0..254 over [lo, hi]; 255 marks a block holding NaN or inf. exact: each block
    is one element."""
    grid = arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(arr.shape[0], -1)
    rows, cols = min(HEAT_CELLS, grid.shape[0]), min(HEAT_CELLS, grid.shape[1])
    r_edges = np.linspace(0, grid.shape[0], rows + 1).astype(int)
    c_edges = np.linspace(0, grid.shape[1], cols + 1).astype(int)
    means = np.array([[grid[r_edges[i]:r_edges[i + 1], c_edges[j]:c_edges[j + 1]].mean() for j in range(cols)]
                      for i in range(rows)])
    ok = np.isfinite(means)
    lo, hi = (float(means[ok].min()), float(means[ok].max())) if ok.any() else (0.0, 0.0)
    scaled = np.zeros(means.shape) if hi == lo else (means - lo) / (hi - lo) * 254
    cells = np.where(ok, np.rint(np.nan_to_num(scaled)), 255).astype(np.uint8)
    return {"rows": rows, "cols": cols, "lo": lo, "hi": hi, "cells": base64.b64encode(cells.tobytes()).decode(),
            "exact": grid.shape == (rows, cols)}


def _with_edge_ids(graph: Graph, dot: str) -> str:
    """The DOT source with each drawn edge given id="eI", I its index in graph.edges, so the page maps the
    drawing back to the data (to_dot draws the edges in plan().drawn_edges order)."""
    drawn = iter(plan(graph).drawn_edges(graph))
    lines = dot.splitlines()
    for k, line in enumerate(lines):
        m = _EDGE_LINE.match(line)
        if m:
            i = next(drawn)[2]
            lines[k] = line[:m.end()] + f'id="e{i}", ' + line[m.end():]
    return "\n".join(lines) + "\n"


def _clean(svg: bytes) -> str:
    """The SVG element alone (no XML prologue), without Graphviz's own ids, which two drawings on one page
    would share, nor the font of every text, which the page's style gives."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    return _AUTO_ID.sub("", text)


def _dark_css() -> str:
    """Dark mode follows the system: each colour of the figure mapped to its dark twin by attribute."""
    rules = []
    for light, dark in DARK.items():
        rules.append(f'.drawing [fill="{light}"] {{ fill: {dark}; }}')
        rules.append(f'.drawing [stroke="{light}"] {{ stroke: {dark}; }}')
    return "\n@media (prefers-color-scheme: dark) {\n" + "\n".join(rules) + "\n}\n"


def _script_json(data: dict) -> str:
    """JSON that is safe inside <script>: with every < escaped, neither `</script>` nor `<!--` can end or
    change the element early."""
    # allow_nan=False: a NaN that reached here unconverted is a bug to raise, not a page that cannot load
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _asset(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def repr_html(graph: Graph) -> str:
    """The explorer in a notebook: the page in an iframe (its ids, styles and keys cannot clash with another
    explorer or the notebook's own), as tall as the drawing up to 640 px."""
    page, _ = to_html(graph)
    m = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', page)
    height = 640 if m is None else min(640, max(240, int(int(m.group(2)) * 4 / 3) + 90))
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width: 100%; height: {height}px; '
            f'border: 1px solid #d1d5db; border-radius: 4px" title="gradviz explorer"></iframe>')
