"""gradviz.views.mermaid: a flowchart block with the figure's numbers and no raw markup in any label."""
from __future__ import annotations

import re
from pathlib import Path

import gradviz
from gradviz import trace_file
from gradviz.views.mermaid import to_mermaid

ROOT = Path(__file__).resolve().parent.parent
LABEL = re.compile(r'"([^"]*)"')


def test_neuron_block_has_nodes_edges_and_numbers():
    text = to_mermaid(trace_file(ROOT / "samples/neuron.py", granularity="scalar"))
    lines = text.splitlines()
    assert lines[0] == "```mermaid" and lines[1] == "flowchart LR" and lines[-1] == "```"
    assert '  n0["x[0]<br/>value = 1<br/>grad = -3"]' in lines
    assert '  n0 -->|"∂(x[0]*w[0])/∂x[0] = w[0] = -3<br/>chain = 1 × -3 = -3"| n7' in lines
    # ">" inside the ReLU rule is an entity, so Mermaid does not read it as markup
    assert '  n10 -->|"∂forward/∂z = 1 if z #62; 0 else 0 = 1<br/>chain = 1 × 1 = 1"| n12' in lines
    assert sum(" --> " in line or " -->|" in line for line in lines) == 12
    assert "  linkStyle 11 stroke:#b6bcc6,stroke-dasharray:4 3" in lines  # the constant's edge carries 0


def test_labels_are_escaped():
    g = gradviz.trace(lambda x: x * 2.0, x=1.0)
    g.nodes[0].name = 'a"b#c<d>&e|f{g}`h;\nnext'
    text = to_mermaid(g)
    node = next(line for line in text.splitlines() if line.startswith("  n0["))
    assert node == '  n0["a#34;b#35;c#60;d#62;#38;e#124;f#123;g#125;#96;h#59; next<br/>value = 1<br/>grad = 2"]'
    for line in text.splitlines()[2:-1]:
        for label in LABEL.findall(line):
            assert not set(label.replace("<br/>", "")) & set('"<>&|{}`')


def test_wrt_and_rankdir():
    text = to_mermaid(trace_file(ROOT / "samples/neuron.py", granularity="scalar"), "TB", wrt="b")
    assert "flowchart TB" in text
    highlighted = [line for line in text.splitlines() if "stroke:#7c3aed" in line]
    assert highlighted == ["  linkStyle 9 stroke:#7c3aed", "  linkStyle 10 stroke:#7c3aed"]
