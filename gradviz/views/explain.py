"""`gradviz explain`: the chain rule for one input, written out path by path (text, LaTeX or JSON), and the
forward-mode tables (∂node/∂input for every node). Reads a finished Graph and the engine's paths."""
from __future__ import annotations

import itertools
import json
import re

import numpy as np
from rich.console import Group
from rich.text import Text

from ..graph import Graph
from ..inputs import inputs
from ..paths import Explanation, Path
from ..rounding import magnitudes
from . import format as fmt
from .table import MAX_ROWS, Fitted, _cut, _label, _num, _table, forward_table

_BARE = re.compile(r"[\w.]+(\[[^\]]*\])?(\(.*\))?")  # x, w[0], max(z,0): no brackets needed after ∂


def _d(label: str) -> str:
    return label if _BARE.fullmatch(label) else f"({label})"


def _lhs(graph: Graph, ex: Explanation, out: int) -> str:
    return f"∂{_d(graph.label(out))}/∂{_d(ex.wrt)}"


def _factors(graph: Graph, path: Path) -> list[str]:
    labels = [_d(graph.label(i)) for i in path.nodes]
    return [f"∂{a}/∂{b}" for a, b in itertools.pairwise(labels)]


def _numbers(path: Path) -> str:
    return " · ".join(_factor(fmt.number(v), k) for k, v in enumerate(path.locals)) or "1"


def _factor(text: str, position: int) -> str:
    """A negative factor after the first in parentheses, as written by hand: 2 · (-6) · 3."""
    return f"({text})" if position and text.startswith("-") else text


def explain_text(graph: Graph, ex: Explanation, max_paths: int) -> Text:
    shown = list(itertools.islice(ex.paths, max_paths))
    lines: list[str] = []
    total = fmt.number(ex.total, magnitudes(graph).grad[ex.leaf])
    if ex.n_paths == 0:
        why = graph.no_leaf_reason()
        return Text(f"no path leads from the output down to {ex.wrt}: {_lhs(graph, ex, ex.outputs[0])} = 0\n"
                    + (f"{why}\n" if why else ""))
    explained: set[int] = set()
    if ex.n_paths == 1 and shown:
        p = shown[0]
        if len(p.locals) == 1:  # one factor: its rule is the whole story, ∂(x*y)/∂x = y = 3
            lines.append(fmt.local_line(graph, p.edges[0]))
        else:
            lhs, factors = _lhs(graph, ex, p.nodes[0]), " · ".join(_factors(graph, p)) or "1"
            numbers = "" if len(p.locals) < 2 else f"{_numbers(p)} = "
            lines.append(f"{lhs} = {factors} = {numbers}{fmt.number(p.product)}")
            lines += _rules(graph, p, explained)
        lines.append("one path from the output down to " + ex.wrt + ": the chain rule is the product of the "
                     "local partials along it")
        return Text("\n".join(lines) + "\n")
    lhs = _lhs(graph, ex, ex.outputs[0]) if len(ex.outputs) == 1 else f"∂(Σ outputs)/∂{_d(ex.wrt)}"
    lines.append(f"{lhs}: {_paths(ex.n_paths)} from the output down to {ex.wrt}; each contributes the product "
                 "of the local partials along it, and the gradient is their sum")
    width = len(str(len(shown)))
    for k, p in enumerate(shown, 1):
        numbers = "" if len(p.locals) < 2 else f"{_numbers(p)} = "
        lines.append(f"  path {k:>{width}}: {' · '.join(_factors(graph, p))} = {numbers}{fmt.number(p.product)}")
        lines += _rules(graph, p, explained, indent=" " * (width + 9))
    if len(shown) == ex.n_paths:
        lines.append(f"{lhs} = {' + '.join(fmt.number(p.product) for p in shown)} = {total}")
    else:
        lines.append(f"  … {_paths(ex.n_paths - len(shown), 'more ')} (counted, not listed: --max-paths N lists more)")
        lines.append(f"{lhs} = sum over all {_paths(ex.n_paths)} = {total}  (backward computes this sum without "
                     "listing the paths: each node adds up what its consumers pass down)")
    return Text("\n".join(lines) + "\n")


def _rules(graph: Graph, path: Path, explained: set[int], indent: str = "  ") -> list[str]:
    """Each factor of the path beside its rule and number (`∂(x*y)/∂x = y = 3`), once per explanation."""
    lines = []
    for e in path.edges:
        if id(e) not in explained:
            explained.add(id(e))
            lines.append(indent + fmt.local_line(graph, e))
    return lines


def _paths(n: int, more: str = "") -> str:
    return f"{n} {more}path" + ("" if n == 1 else "s")


def explain_json(graph: Graph, exs: list[Explanation], max_paths: int, element: bool) -> str:
    """One object per input number; a single object when the user named one number (b, w[0])."""
    items = [{"wrt": ex.wrt, "total": _json_number(ex.total), "n_paths": ex.n_paths,
              "paths": [{"labels": [graph.label(i) for i in p.nodes], "locals": [_json_number(v) for v in p.locals],
                         "product": _json_number(p.product)} for p in itertools.islice(ex.paths, max_paths)]}
             for ex in exs]
    return json.dumps(items[0] if element else items, ensure_ascii=False, indent=1) + "\n"


def explain_latex(graph: Graph, ex: Explanation, max_paths: int) -> str:
    shown = list(itertools.islice(ex.paths, max_paths))
    lhs = _frac(graph.label(ex.outputs[0]), ex.wrt) if len(ex.outputs) == 1 else \
        r"\frac{\partial \sum \mathrm{outputs}}{\partial " + _tex(ex.wrt) + "}"
    rows = []
    for k, p in enumerate(shown):
        labels = [graph.label(i) for i in p.nodes]
        term = r"\,".join(_frac(a, b) for a, b in itertools.pairwise(labels)) or "1"
        nums = r" \cdot ".join(_factor(_tex_number(v), k) for k, v in enumerate(p.locals)) or "1"
        lead = f"{lhs} &= " if k == 0 else r"&\quad + "
        nums = "" if len(p.locals) < 2 else f"{nums} = "
        rows.append(f"{lead}{term} && = {nums}{_tex_number(p.product)}")
    if not ex.n_paths:
        rows.append(f"{lhs} &= 0 && " + r"\text{(no path leads to it)}")
    else:
        if len(shown) < ex.n_paths:
            lead = r"&\quad + \cdots" if shown else f"{lhs} &= \\cdots"
            rows.append(lead + r" && \text{(" + _paths(ex.n_paths - len(shown), "more ") + r")}")
        paths = "the one path" if ex.n_paths == 1 else f"sum over {_paths(ex.n_paths)}"
        total = _tex_number(ex.total, magnitudes(graph).grad[ex.leaf])
        rows.append(f"&= {total} && " + r"\text{(" + paths + r")}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"


def _frac(top: str, bottom: str) -> str:
    return r"\frac{\partial " + _tex_group(top) + r"}{\partial " + _tex_group(bottom) + "}"


_TOKEN = re.compile(r"\*\*|[A-Za-z_]\w*|\d+(?:\.\d*)?(?:e[-+]?\d+)?|\[[^\]]*\]|.", re.S)
_TEX_OPS = {"*": r" \cdot ", "@": r" \mathbin{@} ", "…": r"\ldots", "-": "-", "+": "+", "/": "/"}


def _tex(label: str) -> str:
    """A gradviz label in LaTeX math: w[0] → w_{0}, x*y → x \\cdot y, layer_out → \\mathrm{layer\\_out}."""
    out = []
    tokens = _TOKEN.findall(label)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "**" and i + 1 < len(tokens):
            out.append("^{" + _tex(tokens[i + 1]) + "}")
            i += 2
            continue
        if tok.startswith("["):
            out.append("_{" + tok[1:-1] + "}")
        elif tok[0].isalpha() or tok[0] == "_":
            out.append(tok if len(tok) == 1 else r"\mathrm{" + tok.replace("_", r"\_") + "}")
        else:
            out.append(_TEX_OPS.get(tok, tok))
        i += 1
    return "".join(out)


def _tex_group(label: str) -> str:
    return _tex(label) if _BARE.fullmatch(label) else r"\left(" + _tex(label) + r"\right)"


def _tex_number(v: float, magnitude: float | None = None) -> str:
    text = fmt.number(v, magnitude)
    if "e" in text:
        mantissa, exp = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exp)}}}"
    return text


def forward_summary(graph: Graph, tangent: float, gradient: float) -> Text:
    many = " (summed over the output's elements)" if np.size(graph.output_value) > 1 else ""
    m = magnitudes(graph)
    x = inputs(graph, graph.wrt)[0]
    tangent_size = float(np.sum([m.tangent[i] for i in graph.output_ids()]))
    gradient_size = float(np.asarray(m.leaf(graph, x.leaf))[x.index])
    return Text(f"forward mode: the output's tangent ∂output/∂{graph.wrt} = {fmt.number(tangent, tangent_size)}"
                f"{many}; reverse mode (backward) gives ∂output/∂{graph.wrt} = "
                f"{fmt.number(gradient, gradient_size)}\n"
                "forward mode makes one pass per input number; reverse mode one pass per output\n")


def forward_tables(graph: Graph) -> Group:
    """Forward mode: the forward pass, every edge's local × tangent of its input, and every node's tangent."""
    wrt = graph.wrt
    intro = Text(f"Forward mode: the tangent of a node is ∂node/∂{wrt}. {wrt} starts at 1, every other input at 0; "
                 f"each edge passes on its share = local × the tangent of its input, and each node's tangent is "
                 f"the sum of the shares on its incoming edges. Edges in the order the forward pass visits them:")
    e_table = _table(f"Forward mode, ∂·/∂{wrt}")
    for name in ("edge: input → result", "local ∂result/∂input", f"∂input/∂{wrt}", "share"):
        e_table.add_column(name, justify="left" if name.startswith(("edge", "local")) else "right")
    m = magnitudes(graph)
    for k, e in enumerate(graph.edges[:MAX_ROWS]):
        e_table.add_row(_label(f"{graph.label(e.src)} → {graph.label(e.dst)}"),
                        Text(fmt.breakable(fmt.local_rule(graph, e))),
                        _num(graph.nodes[e.src].tangent, m.tangent[e.src]), _num(e.tangent, m.share[k]))
    _cut(e_table, len(graph.edges))
    n_table = _table(f"Tangents ∂node/∂{wrt}")
    for name in ("node", "value", f"∂node/∂{wrt}"):
        n_table.add_column(name, justify="left" if name == "node" else "right")
    for n in graph.nodes[:MAX_ROWS]:
        n_table.add_row(_label(graph.label(n.id)), _num(n.value, m.value[n.id]), _num(n.tangent, m.tangent[n.id]))
    _cut(n_table, len(graph.nodes))
    return Group(Fitted(forward_table(graph)), intro, Fitted(e_table), Fitted(n_table))



def _json_number(v: float):
    return v if v == v and abs(v) != float("inf") else str(v)
