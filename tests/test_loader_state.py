"""Parameters where real code keeps them: dicts and lists on objects, module-level dicts, to a depth of three."""

import numpy as np
import pytest

import gradviz
from gradviz.errors import ModelError
from gradviz.inputs import inputs


class Net:
    def __init__(self) -> None:
        self.params = {"W1": np.array([[1.0, -2.0], [0.5, 3.0]]), "b1": np.array([0.25, -1.0])}

    def forward(self, x):
        return np.sum((x @ self.params["W1"] + self.params["b1"]) ** 2)


class Layer:
    def __init__(self, w: float) -> None:
        self.W = np.array([w])


class Model:
    def __init__(self) -> None:
        self.layers = [Layer(2.0), Layer(-3.0)]
        self.weights = [np.array([0.5]), np.array([4.0])]


net = Net()
model = Model()
params = {"W1": np.array([1.0, 2.0, 3.0]), "cfg": {"scale": np.array([2.0])}}
X = np.array([[1.0, 2.0]])
deep = {"a": {"b": {"c": {"d": np.array([1.0])}}}}


def _net():
    return net.forward(X)


def test_a_params_dict_on_an_object_with_a_forward_of_no_parameters():
    for granularity in ("scalar", "tensor"):
        graph = gradviz.trace(_net, granularity=granularity)
        assert set(graph.leaves) == {"X", "net.params['W1']", "net.params['b1']"}
        W, b = net.params["W1"], net.params["b1"]
        z = X @ W + b  # [[2.25, 3.0]]
        np.testing.assert_allclose(graph.output_value, np.sum(z ** 2))
        # ∂Σz²/∂W[i,j] = 2·z[j]·x[i], ∂/∂b[j] = 2·z[j]
        np.testing.assert_allclose(graph.grad("net.params['W1']"), [[4.5, 6.0], [9.0, 12.0]])
        np.testing.assert_allclose(graph.grad("net.params['b1']"), [4.5, 6.0])
    # scalar elements are named by the place and the index; --wrt finds them
    assert inputs(graph, "net.params['W1'][1,0]")[0].index == (1, 0)
    names = [n["label"] for n in gradviz.trace(_net, granularity="scalar").to_dict()["nodes"]]
    assert "net.params['W1'][1,0]" in names
    # the dict holds its own arrays again afterwards
    assert all(type(v) is np.ndarray for v in net.params.values())


def test_params_names_a_place_exactly_or_by_glob():
    graph = gradviz.trace(_net, granularity="tensor", params=["net.params['W1']"])
    assert list(graph.leaves) == ["net.params['W1']"]
    graph = gradviz.trace(_net, granularity="tensor", params=["net.params*"])
    assert list(graph.leaves) == ["net.params['W1']", "net.params['b1']"]
    graph = gradviz.trace(_net, granularity="tensor", params=["net.params['b*']", "X"])
    assert list(graph.leaves) == ["net.params['b1']", "X"]


def _layers(x):
    h = x * model.layers[0].W * model.layers[1].W
    return np.sum(h * model.weights[0] + model.weights[1])


def test_objects_in_a_list_on_an_object_and_a_list_of_arrays():
    graph = gradviz.trace(_layers, granularity="tensor", x=np.array([1.0, 2.0]))
    assert list(graph.leaves) == ["x", "model.layers[0].W", "model.layers[1].W", "model.weights[0]",
                                  "model.weights[1]"]
    # out = Σ x·a·b·c + d over two elements, a=2, b=-3, c=0.5, d=4
    np.testing.assert_allclose(graph.output_value, 3 * 2 * -3 * 0.5 + 8)
    np.testing.assert_allclose(graph.grad("model.layers[0].W"), [3 * -3 * 0.5])
    np.testing.assert_allclose(graph.grad("model.weights[1]"), [2.0])
    assert type(model.layers[0].W) is np.ndarray and type(model.weights[1]) is np.ndarray


def _module_dict(x):
    return np.sum(params["W1"] * x) * params["cfg"]["scale"][0]


def test_module_level_dicts_nested_to_depth_three_and_no_deeper():
    graph = gradviz.trace(_module_dict, granularity="scalar", x=np.array([1.0, 1.0, 2.0]))
    assert list(graph.leaves) == ["x", "params['W1']", "params['cfg']['scale']"]
    np.testing.assert_allclose(graph.grad("params['W1']"), [2.0, 2.0, 4.0])
    np.testing.assert_allclose(graph.grad('params["W1"]'), [2.0, 2.0, 4.0])  # either quote
    assert inputs(graph, 'params["W1"][2]')[0].label == "params['W1'][2]"
    np.testing.assert_allclose(graph.grad("params['cfg']['scale']"), [9.0])
    graph = gradviz.trace(lambda: np.sum(deep["a"]["b"]["c"]["d"]) + X[0, 0], granularity="tensor")
    assert list(graph.leaves) == ["X"]  # four steps down is not looked at: a constant


def _nothing():
    return 3.0


def test_no_leaves_is_the_error_only_when_nothing_takes_part():
    only_ints = {"__name__": "m", "n": 3}
    fn = type(_nothing)(_nothing.__code__, only_ints, "_nothing")
    with pytest.raises(ModelError, match="_nothing has no parameters and the model keeps no float arrays"):
        gradviz.trace(fn)
    # arrays kept, none of them used: nothing takes part either
    with pytest.raises(ModelError, match=r"_nothing has no parameters and none of the arrays the model keeps "
                                         r"\(net.params\['W1'\], .*\) takes part in its output"):
        gradviz.trace(_nothing)


registry: dict = {}


def _registers(x):
    registry["seen"] = True  # the model's own bookkeeping in a dict it does not keep leaves in
    return np.sum(params["W1"] * x)


def test_a_dict_is_searched_for_leaves_but_not_rolled_back():
    graph = gradviz.trace(_registers, granularity="tensor", x=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(graph.grad("params['W1']"), [1.0, 2.0, 3.0])
    assert registry == {"seen": True} and type(params["W1"]) is np.ndarray
