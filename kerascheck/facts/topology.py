"""Questions about the layer graph that rules share, answered from the ModelSpec alone.

Nested models are looked through: edges run from layer to layer across model
boundaries, so "what feeds the output" has the same answer however the model
was assembled.
"""
from __future__ import annotations

from typing import Iterator

from kerascheck.facts.build import layer_refs  # one parser for the [name, node, tensor] format
from kerascheck.facts.spec import LayerSpec, ModelSpec

RECURRENT_CLASSES = frozenset({
    "LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    "LSTMCell", "GRUCell", "SimpleRNNCell", "StackedRNNCells", "CuDNNLSTM", "CuDNNGRU",
    "LSTMV1", "GRUV1", "PeepholeLSTMCell",
})
# Layers that pass their input's meaning (scale, activation) through unchanged.
PASS_THROUGH = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
    "AlphaDropout", "GaussianNoise", "ActivityRegularization", "Reshape", "Flatten", "Identity",
    "Permute", "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D",
    "ZeroPadding2D", "ZeroPadding3D", "Masking", "InputLayer",
})
SCALING_LAYERS = frozenset({"Rescaling", "Normalization", "BatchNormalization", "LayerNormalization",
                            "UnitNormalization", "GroupNormalization"})
ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu",
                     "PReLU": "prelu"}


def activation_name(value) -> str:
    """The activation a config names, as Keras's short name ("linear" when none)."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value.split(">")[-1].lower() or "linear"
    if isinstance(value, dict):
        cfg = value.get("config")
        if value.get("class_name") == "function" and isinstance(cfg, str):
            return cfg.lower()
        if isinstance(value.get("class_name"), str):
            return value["class_name"].lower()
    return "unknown"


class Graph:
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.by_qual = {layer.qualname: layer for layer in spec.layers}
        self._producers: dict[str, list[str]] = {}
        for layer in spec.layers:
            if not layer.is_model:
                self._producers[layer.qualname] = list(self._resolve_producers(layer))
        self._consumers: dict[str, list[str]] = {q: [] for q in self._producers}
        for q, prods in self._producers.items():
            for p in prods:
                self._consumers.setdefault(p, []).append(q)

    def _outputs_of(self, model: LayerSpec) -> Iterator[str]:
        scope = model.scope + (model.name,)
        names = list(layer_refs(model.config.get("output_layers")))
        inner = [l for l in self.spec.layers if l.scope == scope]
        if not names and inner:
            names = [inner[-1].name]
        yield from self._expand(scope, names)

    def _resolve_producers(self, layer: LayerSpec) -> Iterator[str]:
        if layer.class_name == "InputLayer" and layer.scope:
            # The input of a nested model is fed by whatever feeds the nested model.
            container = self.by_qual.get("/".join(layer.scope))
            if container is not None:
                yield from self._resolve_producers(container)
            return
        yield from self._expand(layer.scope, layer.inbound)

    def _expand(self, scope: tuple, names) -> Iterator[str]:
        """The layers `names` in `scope`, a nested model standing for the layers of its outputs."""
        for name in names:
            layer = self.by_qual.get("/".join(scope + (name,)))
            if layer is None:
                continue
            if layer.is_model:
                yield from self._outputs_of(layer)
            else:
                yield layer.qualname

    def producers(self, qualname: str) -> list[str]:
        return self._producers.get(qualname, [])

    def consumers(self, qualname: str) -> list[str]:
        return self._consumers.get(qualname, [])

    def output_activation(self, qualname: str) -> tuple[str, int | None, str]:
        """(activation, units, layer that applies it) of what `qualname` outputs.

        Follows back through layers that do not change the meaning of their input
        (Dropout, Reshape, ...); a standalone Activation/Softmax layer counts.
        """
        layer, seen = self.by_qual[qualname], set()
        while layer.qualname not in seen:
            seen.add(layer.qualname)
            cls = layer.class_name.split(">")[-1]
            if cls == "Activation":
                return activation_name(layer.config.get("activation")), self._upstream_units(layer), layer.qualname
            if cls in ACTIVATION_LAYERS:
                return ACTIVATION_LAYERS[cls], self._upstream_units(layer), layer.qualname
            if cls not in PASS_THROUGH:
                return activation_name(layer.config.get("activation")), self._upstream_units(layer), layer.qualname
            prods = self.producers(layer.qualname)
            if len(prods) != 1:
                break
            layer = self.by_qual[prods[0]]
        return "linear", None, qualname

    def _upstream_units(self, layer: LayerSpec) -> int | None:
        seen = set()
        while layer.qualname not in seen:
            seen.add(layer.qualname)
            units = layer_units(layer)
            if units is not None:
                return units
            prods = self.producers(layer.qualname)
            if len(prods) != 1:
                return None
            layer = self.by_qual[prods[0]]
        return None


def layer_units(layer: LayerSpec) -> int | None:
    for key in ("units", "filters"):
        value = layer.config.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def graph_of(spec: ModelSpec) -> Graph:
    """The Graph of a spec, built once however many rules ask."""
    graph = spec.__dict__.get("_graph")
    if graph is None:
        graph = Graph(spec)
        object.__setattr__(spec, "_graph", graph)
    return graph


def inner_classes(config) -> Iterator[tuple[str, str | None]]:
    """(class_name, layer name) of every layer config nested in a layer's config (wrapped layers, cells)."""
    stack = [config]
    while stack:  # depth-first in document order: a Bidirectional's forward layer comes first
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str) and isinstance(node.get("config"), dict):
                yield node["class_name"].split(">")[-1], node["config"].get("name")
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
