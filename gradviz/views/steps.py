"""`gradviz trace --steps`: one figure per backward step, and a page that flips through them.

Each figure is the DOT view of the graph as it stood at that step: nodes whose gradient is complete are
filled, the node just completed is outlined in red with the edges its gradient came from, and the rest are
empty, showing no gradient yet; edges backward has not visited yet carry no chain.
"""
from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

from ..errors import GradvizError
from ..graph import Graph
from ..rounding import magnitudes
from ..steps import Step, backward_steps
from . import format as fmt
from .dot import to_dot

NOW = "#e11d48"
EMPTY = "#ffffff"
_EDGE_LINE = re.compile(r"^  n\d+ -> n\d+ \[")


def step_dot(graph: Graph, steps: list[Step], k: int, rankdir: str = "LR") -> str:
    """DOT source for the graph after step k."""
    step = steps[k]
    finished = {s.node for s in steps[:k + 1]}
    snapshot = _snapshot(graph, finished, step.visited)
    lines = to_dot(snapshot, rankdir).splitlines()
    edge_no = 0
    for j, line in enumerate(lines):
        if _EDGE_LINE.match(line):
            if edge_no in step.edges:
                lines[j] = line[:-2] + f', color="{NOW}", fontcolor="{NOW}", penwidth="3"];'
            edge_no += 1
    restyle = [f'  n{n.id} [fillcolor="{EMPTY}"];' for n in graph.nodes
               if n.id not in finished and n.kind != "const"]
    restyle.append(f'  n{step.node} [color="{NOW}", penwidth="3"];')
    key = (f'<font point-size="10" color="#6b7280">filled: gradient complete · white: not yet · '
           f'<font color="{NOW}">red</font>: just completed, with the edges its gradient came from · '
           f"chain = —: edge not visited yet</font>")
    restyle.append(f"  graph [label=<<b>{html.escape(caption(graph, steps, k))}</b><br/>{key}>];")
    return "\n".join(lines[:-1] + restyle + lines[-1:]) + "\n"


def caption(graph: Graph, steps: list[Step], k: int) -> str:
    step = steps[k]
    node = graph.nodes[step.node]
    name = graph.label(step.node)
    head = f"step {k} of {len(steps) - 1}: "
    m = magnitudes(graph)
    grad = fmt.value(node.grad, m.grad[step.node])
    if not step.edges:
        return head + f"the output {name} starts backward with grad = {grad} (the seed)"
    chains = " + ".join(fmt.value(graph.edges[i].chain, m.chain[i]) for i in step.edges)
    uses = "its one use" if len(step.edges) == 1 else f"its {len(step.edges)} uses"
    total = f"{chains} = {grad}" if len(step.edges) > 1 else grad
    return head + f"grad of {name} is complete: the chain from {uses} gives {total}"


def _snapshot(graph: Graph, finished: set[int], visited: int) -> Graph:
    """A copy of the graph showing only what backward knew: no gradient on unfinished nodes, no chain on
    unvisited edges."""
    snap = copy.copy(graph)
    snap.nodes = [copy.copy(n) for n in graph.nodes]
    snap.edges = [copy.copy(e) for e in graph.edges]
    for n in snap.nodes:
        if n.id not in finished:
            n.grad = None
    for e in snap.edges[:len(snap.edges) - visited]:
        e.upstream = e.chain = None
    return snap


def index_html(title: str, files: list[str], captions: list[str]) -> str:
    """A page showing one step at a time: ← and → (or the buttons) page through them."""
    data = json.dumps([{"file": f, "caption": c} for f, c in zip(files, captions)], ensure_ascii=False)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}: backprop step by step</title>
<style>
  body {{ font-family: Helvetica, Arial, sans-serif; margin: 1em 2em; color: #1f2937; }}
  h1 {{ font-size: 1.1em; margin: 0 0 0.4em; }}
  nav {{ display: flex; gap: 0.6em; align-items: center; margin-bottom: 0.6em; }}
  button {{ font-size: 1em; padding: 0.2em 0.8em; }}
  #figure {{ max-width: 100%; height: auto; }}
  .hint {{ color: #6b7280; font-size: 0.9em; }}
</style>
</head>
<body>
<h1>{html.escape(title)}: backprop step by step</h1>
<nav>
  <button id="prev" title="previous step (←)">← previous</button>
  <span id="counter"></span>
  <button id="next" title="next step (→)">next →</button>
  <span class="hint">← → keys page through the steps; Home and End jump to the first and last</span>
</nav>
<img id="figure" alt="">
<script>
const steps = {data};
let current = 0;
function show(k) {{
  current = Math.max(0, Math.min(steps.length - 1, k));
  const figure = document.getElementById("figure");
  figure.src = steps[current].file;
  figure.alt = steps[current].caption;
  document.getElementById("counter").textContent = "step " + current + " of " + (steps.length - 1);
  document.getElementById("prev").disabled = current === 0;
  document.getElementById("next").disabled = current === steps.length - 1;
  history.replaceState(null, "", "#" + current);
}}
document.addEventListener("keydown", (event) => {{
  const to = {{ArrowRight: current + 1, ArrowDown: current + 1, ArrowLeft: current - 1, ArrowUp: current - 1,
              Home: 0, End: steps.length - 1}}[event.key];
  if (to !== undefined) {{ event.preventDefault(); show(to); }}
}});
document.getElementById("prev").addEventListener("click", () => show(current - 1));
document.getElementById("next").addEventListener("click", () => show(current + 1));
show(parseInt(location.hash.slice(1), 10) || 0);
</script>
</body>
</html>
"""


MAX_STEPS = 200  # one figure per step: past this, a graph is too big to page through one node at a time


def write_steps(graph: Graph, folder: Path, title: str, rankdir: str | None = None) -> tuple[int, str]:
    """Write step_000.svg, … and index.html into folder; returns (number of figures, renderer used).
    Without a rankdir every step takes the direction that fits the last one (views/render.fitted)."""
    from ..output import write_atomic
    from .render import fitted, render

    steps = backward_steps(graph)
    if len(steps) > MAX_STEPS:
        raise GradvizError(f"--steps draws one figure per backward step and this graph has {len(steps)} "
                           f"(at most {MAX_STEPS}): try --granularity tensor or a smaller model")
    if rankdir is None:
        rankdir = fitted(lambda direction: step_dot(graph, steps, len(steps) - 1, direction), "svg")[2]
    for old in folder.glob("step_*.svg"):  # a previous, longer run must not leave stale steps behind
        old.unlink()
    files, captions, renderer = [], [], ""
    for k in range(len(steps)):
        data, renderer = render(step_dot(graph, steps, k, rankdir), "svg")
        files.append(f"step_{k:03d}.svg")
        captions.append(caption(graph, steps, k))
        write_atomic(folder / files[-1], data)
    write_atomic(folder / "index.html", index_html(title, files, captions).encode("utf-8"))
    return len(files), renderer
