"""The PyTorch front end (gradviz/torch_trace.py): a model that uses torch gives the same Graph the NumPy
tracer builds, with PyTorch's own gradients on it. Tests that need torch skip without it; the ones about
a machine without torch hide it instead."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from gradviz import trace_file
from gradviz.errors import GradvizError, ModelError
from gradviz.graph import Graph

from conftest import ROOT, SAMPLES, run_cli

TORCH_SAMPLES = SAMPLES / "pytorch"  # not "torch": a folder of that name on sys.path passes for the package
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason='PyTorch is not installed (pip install "gradviz[torch]")')


def _close(a, b) -> None:
    if a is None or b is None:
        assert a is None and b is None
    else:
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-12)


# -- without torch ---------------------------------------------------------------------------------------

HIDE_TORCH = "import sys; sys.modules['torch'] = None; from gradviz.cli import main; sys.argv[0] = 'gradviz'; main()"


def test_without_torch_a_torch_model_is_one_line_saying_how_to_install():
    for command in (["trace", "samples/pytorch/neuron.py"], ["check", "samples/pytorch/neuron.py"],
                    ["ops", "samples/pytorch/neuron.py"]):
        done = subprocess.run([sys.executable, "-c", HIDE_TORCH, *command], capture_output=True, text=True, cwd=ROOT,
                              check=False)
        assert done.returncode == 2, done.stderr
        assert done.stderr == ("gradviz: error: samples/pytorch/neuron.py uses PyTorch, which is not installed here: "
                               'pip install "gradviz[torch]"\n')


def test_a_numpy_model_never_imports_torch():
    code = ("import sys; from gradviz import trace_file; g = trace_file('samples/neuron.py'); "
            "print(g.output_value, 'torch' in sys.modules, 'gradviz.torch_trace' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split() == ["6.0", "False", "False"]


# -- the neuron: the same graph as samples/neuron.py -------------------------------------------------------

@needs_torch
def test_torch_neuron_is_the_numpy_neuron_edge_by_edge():
    t = trace_file(TORCH_SAMPLES / "neuron.py")
    n = trace_file(SAMPLES / "neuron.py", granularity="tensor")
    assert [(t.label(i), a.kind, a.op) for i, a in enumerate(t.nodes)] == \
           [(n.label(i), b.kind, b.op) for i, b in enumerate(n.nodes)]
    for a, b in zip(t.nodes, n.nodes, strict=True):
        _close(a.value, b.value)
        _close(a.grad, b.grad)
        assert a.nondiff == b.nondiff
    assert len(t.edges) == len(n.edges)
    for a, b in zip(t.edges, n.edges, strict=True):
        assert (a.src, a.dst, a.arg, t.rule(a)) == (b.src, b.dst, b.arg, n.rule(b))
        _close(a.local, b.local)
        _close(a.upstream, b.upstream)
        _close(a.chain, b.chain)
    assert t.leaves == n.leaves


@needs_torch
def test_torch_neuron_numbers_are_the_study_notes():
    g = trace_file(TORCH_SAMPLES / "neuron.py")
    assert g.output_value == 6.0
    np.testing.assert_array_equal(g.grad("x"), [-3.0, -1.0, 2.0])
    np.testing.assert_array_equal(g.grad("w"), [1.0, -2.0, 3.0])
    assert float(g.grad("b")) == 1.0
    dot = next(n for n in g.nodes if n.op == "dot")
    x_edge, w_edge = g.in_edges(dot.id)
    np.testing.assert_array_equal(x_edge.local, [-3.0, -1.0, 2.0])  # ∂(x·w)/∂x = w
    np.testing.assert_array_equal(w_edge.chain, [1.0, -2.0, 3.0])  # upstream 1 × x


# -- the classifier: PyTorch's gradients, checked -------------------------------------------------------------

def _pytorch_reference():
    """The classifier sample run by PyTorch alone, in float64: (loss, {leaf name: its .grad})."""
    import torch
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        spec = importlib.util.spec_from_file_location("classifier_reference", TORCH_SAMPLES / "classifier.py")
        sample = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sample)
    finally:
        torch.set_default_dtype(dtype)
    x = sample.x.clone().requires_grad_(True)
    loss = sample.forward(x, sample.target)
    loss.backward()
    grads = {"x": x.grad}
    grads.update({f"model.{name}": p.grad for name, p in sample.model.named_parameters()})
    return loss.item(), {k: v.numpy() for k, v in grads.items()}


@needs_torch
def test_classifier_every_leaf_gradient_is_param_grad():
    g = trace_file(TORCH_SAMPLES / "classifier.py")
    loss, grads = _pytorch_reference()
    assert set(g.leaves) == {"x", "model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    assert g.output_value == pytest.approx(loss, rel=1e-12)
    for name, expected in grads.items():
        np.testing.assert_allclose(g.grad(name), expected, rtol=1e-12, atol=1e-15)
    assert all(n.value.dtype == np.float64 for n in g.nodes)


@needs_torch
def test_classifier_chains_add_up_to_each_gradient_and_layers_are_clusters():
    g = trace_file(TORCH_SAMPLES / "classifier.py")
    for node in g.nodes:
        if node.kind == "const" or node.id == g.output:
            continue
        outgoing = [e.chain for e in g.edges if e.src == node.id]
        np.testing.assert_allclose(sum(outgoing), node.grad, rtol=1e-12, atol=1e-15)
    assert g.clusters == [("model", 0), ("model.0", 0), ("model.1", 0), ("model.2", 0)]
    by_label = {g.label(n.id): g.cluster_of(n.id) for n in g.nodes}
    assert by_label["logits"] == ("model.2", 0) and by_label["model.0"] == ("model.0", 0)
    assert by_label["model.1"] == ("model.1", 0) and by_label["x"] is None


@needs_torch
def test_classifier_check_passes_against_finite_differences():
    done = run_cli("check", TORCH_SAMPLES / "classifier.py", "--format", "json")
    assert done.returncode == 0, done.stderr
    import json
    report = json.loads(done.stdout)
    rows = report["inputs"]
    assert len(rows) == 6 + 6 + 3 + 6 + 2 and all(r["status"] == "ok" for r in rows)


@needs_torch
def test_check_finds_a_wrong_gradient(model, monkeypatch):
    from gradviz import torch_trace
    path = model("""
        import torch
        def forward(x=torch.tensor([0.5, 2.0])):
            return (x * x).sum()
        """)
    m = torch_trace.load(path)
    real = torch_trace.trace

    def wrong(*args):
        g = real(*args)
        g.nodes[g.leaves["x"]].grad = g.nodes[g.leaves["x"]].grad + 1.0
        return g
    monkeypatch.setattr(torch_trace, "trace", wrong)
    report = torch_trace.check(m)
    assert not report.passed
    assert [c.numeric for c in report.inputs] == pytest.approx([1.0, 4.0], rel=1e-8)  # ∂Σx²/∂x = 2x


# -- operations: locals from the table or from PyTorch; constants; names --------------------------------------

@needs_torch
def test_locals_of_twins_and_of_pytorch_only_ops(model):
    path = model("""
        import torch
        x = torch.tensor([0.5, -1.0, 2.0])
        def forward(x):
            s = torch.sigmoid(x)
            y = s * 2 + x ** 3
            return y.sum()
        """)
    g = trace_file(path)
    x = np.array([0.5, -1.0, 2.0])
    sig = 1 / (1 + np.exp(-x))
    s = next(n for n in g.nodes if n.name == "s")
    assert s.op == "torch.sigmoid"
    (edge,) = g.in_edges(s.id)
    np.testing.assert_allclose(edge.local, sig * (1 - sig), rtol=1e-12)  # from PyTorch's SigmoidBackward0 on ones
    assert g.rule(edge) == "∂σ(x)/∂x = σ(x)·(1 − σ(x))"
    mul = next(n for n in g.nodes if n.op == "mul")
    src, two = g.in_edges(mul.id)
    assert g.nodes[two.src].kind == "const" and float(g.nodes[two.src].value) == 2.0
    assert two.local is None and two.chain is None and float(src.local[0]) == 2.0
    cube = next(n for n in g.nodes if n.op == "pow")
    base, exponent = g.in_edges(cube.id)
    np.testing.assert_allclose(base.local, 3 * x ** 2)  # ∂(x^y)/∂x = y·x^(y−1)
    assert float(g.nodes[exponent.src].value) == 3.0
    np.testing.assert_allclose(g.grad("x"), 2 * sig * (1 - sig) + 3 * x ** 2, rtol=1e-12)
    assert g.label(g.output) == "forward"  # an unnamed output is called after its function


@needs_torch
def test_unused_module_parameters_are_not_leaves_and_tied_ones_are_one(model):
    path = model("""
        import torch
        from torch import nn
        torch.manual_seed(1)
        used = nn.Linear(2, 1)
        unused = nn.Linear(2, 1)
        def forward(x=torch.tensor([1.0, 2.0])):
            return used(x).sum()
        """)
    g = trace_file(path)
    assert set(g.leaves) == {"x", "used.weight", "used.bias"}
    np.testing.assert_allclose(g.grad("used.weight"), [[1.0, 2.0]])
    np.testing.assert_allclose(g.grad("used.bias"), [1.0])


@needs_torch
def test_json_round_trip_and_render(tmp_path):
    g = trace_file(TORCH_SAMPLES / "classifier.py")
    back = Graph.from_json(g.to_json())
    for a, b in zip(g.nodes, back.nodes, strict=True):
        _close(a.value, b.value)
        _close(a.grad, b.grad)
    for a, b in zip(g.edges, back.edges, strict=True):
        _close(a.chain, b.chain)
        assert g.rule(a) == back.rule(b)
    done = run_cli("trace", TORCH_SAMPLES / "classifier.py", "--no-table", "--collapse", "-f", "json,mermaid,dot",
                   "--out-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    dot = (tmp_path / "classifier.dot").read_text(encoding="utf-8")
    assert "model.0" in dot and "log_softmax" in dot


@needs_torch
def test_forward_mode_on_twins_agrees_with_reverse_and_is_refused_past_them():
    done = run_cli("trace", TORCH_SAMPLES / "neuron.py", "--mode", "forward", "--wrt", "x[2]", "-f", "none")
    assert done.returncode == 0, done.stderr
    assert "∂output/∂x[2] = 2; reverse mode (backward) gives ∂output/∂x[2] = 2" in " ".join(done.stdout.split())
    done = run_cli("trace", TORCH_SAMPLES / "classifier.py", "--mode", "forward", "--wrt", "x[1,0]", "-f", "none")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "gradviz: error: forward mode does not know PyTorch's addmm; use reverse mode (the default)"]


@needs_torch
def test_split_into_scalars_the_torch_neuron_is_the_textbook_neuron_and_explains():
    t = trace_file(TORCH_SAMPLES / "neuron.py", granularity="scalar")
    n = trace_file(SAMPLES / "neuron.py", granularity="scalar")
    assert [(t.label(i), a.op) for i, a in enumerate(t.nodes)] == [(n.label(i), b.op) for i, b in enumerate(n.nodes)]
    assert [(e.src, e.dst, e.local, e.chain) for e in t.edges] == [(e.src, e.dst, e.local, e.chain) for e in n.edges]
    tensor = trace_file(TORCH_SAMPLES / "neuron.py")
    for leaf in ("x", "w", "b"):  # gradviz's backward on the scalars gives PyTorch's gradients
        np.testing.assert_array_equal(t.grad(leaf), tensor.grad(leaf))
    done = run_cli("explain", TORCH_SAMPLES / "neuron.py", "--wrt", "w[1]")
    assert done.returncode == 0, done.stderr
    assert "∂forward/∂w[1] = ∂forward/∂z · ∂z/∂(x[1]*w[1]) · ∂(x[1]*w[1])/∂w[1] = 1 · 1 · (-2) = -2" in done.stdout
    assert done.stdout == run_cli("explain", SAMPLES / "neuron.py", "--wrt", "w[1]").stdout


@needs_torch
def test_scalars_are_refused_in_one_line_past_the_numpy_twins():
    done = run_cli("trace", TORCH_SAMPLES / "classifier.py", "-g", "scalar")
    assert done.returncode == 2
    assert done.stderr == ("gradviz: error: splitting into scalars (--granularity scalar, explain) replays each "
                           "operation through gradviz's rules, and PyTorch's addmm has none; use --granularity "
                           "tensor\n")


@needs_torch
def test_model_errors_are_one_line(model):
    path = model("""
        import torch
        def forward(x=torch.tensor([1.0, 2.0])):
            return x.sum() + undefined_name
        """)
    with pytest.raises(ModelError, match=r"model1.py:4: NameError: name 'undefined_name' is not defined"):
        trace_file(path)
    path = model("""
        import torch
        def forward(x=torch.tensor([1.0, 2.0])):
            return "loss"
        """)
    with pytest.raises(ModelError, match="returned a str; it must return a float tensor or a number"):
        trace_file(path)
    with pytest.raises(GradvizError, match="--set y: forward has no parameter 'y'"):
        trace_file(path, overrides={"y": "1"})


def test_gallery_of_samples_draws_the_numpy_models_only_without_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", HIDE_TORCH, "gallery", "samples", "--out-dir", str(tmp_path),
                           "-f", "json"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    written = sorted(p.stem for p in tmp_path.iterdir())
    assert written == sorted(p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert "neuron" in written and "classifier" not in written


@needs_torch
def test_a_module_class_of_the_model_file_and_an_in_place_relu(model):
    path = model("""
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(2, 2)
            def forward(self, x):
                h = torch.tanh(self.fc1(x))
                return h

        net = Net()
        with torch.no_grad():
            net.fc1.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 2.0]]))
            net.fc1.bias.copy_(torch.tensor([0.25, -3.0]))
        act = nn.ReLU(inplace=True)

        def forward(x=torch.tensor([1.0, 0.5])):
            h = net(x) * 3
            act(h)
            return h.sum()
        """)
    g = trace_file(path)
    assert set(g.leaves) == {"x", "net.fc1.weight", "net.fc1.bias"}
    x, W, b = np.array([1.0, 0.5]), np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([0.25, -3.0])
    pre = W @ x + b  # [0.75, -1.5]: the second unit's relu is off
    t = np.tanh(pre)
    mul = next(n for n in g.nodes if n.op == "mul")
    np.testing.assert_allclose(mul.value, 3 * t)  # the value before relu_ wrote over it
    relu = next(n for n in g.nodes if n.op == "maximum")
    np.testing.assert_allclose(relu.value, np.maximum(3 * t, 0))
    upstream = np.array([1.0, 0.0]) * 3 * (1 - t ** 2)
    np.testing.assert_allclose(g.grad("net.fc1.bias"), upstream, rtol=1e-12)
    np.testing.assert_allclose(g.grad("net.fc1.weight"), np.outer(upstream, x), rtol=1e-12)
    np.testing.assert_allclose(g.grad("x"), W.T @ upstream, rtol=1e-12)
    assert g.label(next(n.id for n in g.nodes if n.op == "tanh")) == "h"


@needs_torch
def test_wrt_highlights_the_paths_from_a_layer_parameter():
    from gradviz.views.dot import wrt_edges
    g = trace_file(TORCH_SAMPLES / "classifier.py")
    path = sorted((g.label(g.edges[i].src), g.label(g.edges[i].dst)) for i in wrt_edges(g, "model.2.bias"))
    assert path == [("log_softmax(logits)", "loss"), ("logits", "log_softmax(logits)"), ("model.2.bias", "logits")]
    # model.0.weight → .T → model.0 → model.1 (relu) → logits → log_softmax → loss
    assert len(wrt_edges(g, "model.0.weight")) == 6


@needs_torch
def test_indexing_and_reversed_subtraction_read_as_their_numpy_twins(model):
    source = """
        import {lib}
        def forward(x={lib}.{make}([[1.0, -1.0, 2.0], [3.0, 0.5, 4.0]])):
            return (x[:, 1:] * x[-1, 0]).sum() - x[0, :2].max() + (2 - x).sum()
        """
    t = trace_file(model(source.format(lib="torch", make="tensor")))
    n = trace_file(model(source.format(lib="numpy", make="array")), granularity="tensor")
    labels = [t.label(i) for i in range(len(t.nodes))]
    assert "x[:,1:]" in labels and "x[0][:2]" in labels and "2-x" in labels
    assert {t.nodes[i].op for i in range(len(t.nodes))} == {None, "getitem", "mul", "sum", "max", "sub", "add"}
    # f = Σ x[:,1:]·x[1,0] − max(x[0,0], x[0,1]) + Σ(2 − x)
    expected = [[-1.0 - 1, 3.0 - 1, 3.0 - 1], [5.5 - 1, 3.0 - 1, 3.0 - 1]]
    np.testing.assert_allclose(t.grad("x"), expected, rtol=1e-12)
    np.testing.assert_allclose(n.grad("x"), expected, rtol=1e-12)
    assert t.output_value == pytest.approx(n.output_value) == 16.5 - 1 + (12 - 9.5)
    scalar = trace_file(model(source.format(lib="torch", make="tensor")), granularity="scalar")
    np.testing.assert_allclose(scalar.grad("x"), expected, rtol=1e-12)


@pytest.mark.parametrize("source, uses", [
    ("import torch\n", True), ("from torch import nn\n", True), ("import torch.nn as nn\n", True),
    ("import numpy as np, torch\n", True), ("    import torch  # inside a function\n", True),
    ("import numpy as np\n", False), ("import torchvision\n", False), ("# import torch\n", False),
    ("x = 'import torch'\n", False), ("import numpy as np  # torch later\n", False),
])
def test_a_torch_model_is_told_by_its_imports(tmp_path, source, uses):
    from gradviz.loader import uses_torch
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    assert uses_torch(path) is uses


@needs_torch
def test_elementwise_pytorch_ops_show_the_local_pytorch_computes(model):
    path = model("""
        import torch
        import torch.nn.functional as F
        def forward(x=torch.tensor([0.5, -2.0, 1.0])):
            s = torch.sin(x)
            r = F.leaky_relu(x, 0.1)
            return (s + r).sum()
        """)
    g = trace_file(path)
    x = np.array([0.5, -2.0, 1.0])
    locals_ = {g.nodes[e.dst].op: e.local for e in g.edges if g.nodes[e.dst].op.startswith("torch.")}
    np.testing.assert_allclose(locals_["torch.sin"], np.cos(x), rtol=1e-12)  # ∂sin(x)/∂x = cos(x)
    np.testing.assert_allclose(locals_["torch.leaky_relu"], [1.0, 0.1, 1.0], rtol=1e-12)
    np.testing.assert_allclose(g.grad("x"), np.cos(x) + [1.0, 0.1, 1.0], rtol=1e-12)


@needs_torch
def test_the_graph_size_budget_holds_for_both_granularities():
    from gradviz import GraphTooLarge
    assert len(trace_file(TORCH_SAMPLES / "neuron.py", max_graph_nodes=7).nodes) == 7  # x, w, b, x·w, z, 0, relu
    with pytest.raises(GraphTooLarge, match=r"neuron.py:forward: PyTorch's maximum would add 1 node "
                                            r"to the 6 traced so far.*over --max-graph-nodes 6"):
        trace_file(TORCH_SAMPLES / "neuron.py", max_graph_nodes=6)
    # split into scalars, the dot alone is 3 products and a sum: past 8 nodes before the graph is done
    with pytest.raises(GraphTooLarge, match=r"dot \(3,\) @ \(3,\) split into 3 products and 1 sums would add 4 nodes "
                                            r"to the 7 traced so far.*use --granularity tensor"):
        trace_file(TORCH_SAMPLES / "neuron.py", granularity="scalar", max_graph_nodes=8)


@needs_torch
def test_pytorch_rows_stay_out_of_the_table_of_numpy_operations():
    from gradviz.ops import OPS
    from gradviz.views.ops_table import ops_markdown
    trace_file(TORCH_SAMPLES / "classifier.py")  # registers torch.addmm, torch.log_softmax, torch.nll_loss
    assert OPS["torch.addmm"].kind.name == "pytorch" and OPS["torch.addmm"].family == "PyTorch"
    assert ops_markdown() == (ROOT / "docs" / "numpy-coverage.md").read_text(encoding="utf-8")
