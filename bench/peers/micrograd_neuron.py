"""Peer: the neuron of samples/neuron.py built with micrograd and drawn with graphviz (system dot), as
micrograd's own trace_graph notebook does; the SVG is written to the path given as argv[1]."""
import sys

from graphviz import Digraph
from micrograd.engine import Value

x = [Value(1.0), Value(-2.0), Value(3.0)]
w = [Value(-3.0), Value(-1.0), Value(2.0)]
b = Value(1.0)
y = (x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + b).relu()
y.backward()

nodes, edges, stack = set(), set(), [y]
while stack:
    v = stack.pop()
    if v not in nodes:
        nodes.add(v)
        for child in v._prev:
            edges.add((child, v))
            stack.append(child)

dot = Digraph(format="svg", graph_attr={"rankdir": "LR"})
for n in nodes:
    dot.node(str(id(n)), f"data {n.data:.4f} | grad {n.grad:.4f}", shape="record")
    if n._op:
        dot.node(str(id(n)) + n._op, n._op)
        dot.edge(str(id(n)) + n._op, str(id(n)))
for a, c in edges:
    dot.edge(str(id(a)), str(id(c)) + c._op)
with open(sys.argv[1], "wb") as f:
    f.write(dot.pipe())
