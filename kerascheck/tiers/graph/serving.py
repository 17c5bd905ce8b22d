"""The graph tier on a SavedModel's serving function (kerascheck.formats.savedmodel.serving).

The same interval analysis and confirmation as for a traced Keras model
(kerascheck.tiers.graph.analysis); what differs is where the ops come from: the flattened
function imported into a tf.Graph as saved (importing runs nothing), its ops attributed to
layers by the variables each name scope reads and the scopes' names, since no layer calls
were recorded. Suspects are confirmed by running the signature on edge inputs and fetching
the op's own inputs and result.
"""
from __future__ import annotations

import os
import re
import time
from collections import Counter

import numpy as np

from kerascheck.errors import TierUnavailable, error_line
from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.formats.savedmodel.serving import ModelError, ServingModel, sample_inputs
from kerascheck.tiers.graph.analysis import WATCHED, Call, GraphFacts, confirm_case, dedupe, edge_cases, judge
from kerascheck.tiers.graph.bounds import Bounds, is_float

def build_serving_graph(model: ServingModel, spec, options) -> GraphFacts:
    """GraphFacts of the serving function; TierUnavailable with the reason when it cannot be analysed."""
    try:
        return analyse(model, spec, options)
    except ModelError as exc:
        raise TierUnavailable(f"the serving graph could not be analysed: {exc}") from None
    except Exception as exc:
        if os.environ.get("KERASCHECK_DEBUG"):
            raise

        raise TierUnavailable(f"the serving graph could not be analysed: {error_line(exc)}") from None


_CALL_NAME = re.compile(r"^(Stateful)?PartitionedCall(_\d+)?$")


_SUFFIX = re.compile(r"_\d+$")


class _Named:
    def __init__(self, name: str):
        self.name = name


def analyse(model: ServingModel, spec, options):
    """GraphFacts for the serving function: suspects from the interval analysis, confirmed by edge inputs."""
    started = time.perf_counter()
    concrete = model.concrete
    traced = time.perf_counter()
    flat = model.flat
    prefix = model.PREFIX
    ops = [op for op in concrete.graph.get_operations() if op.name.startswith(prefix)]
    bounds = Bounds(model.variable_names, model.variable_ranges)
    # The Identity ops that return the fetched tensors are not part of the model.
    bounds.fetch_ops = {t.op.name for t in concrete.outputs[len(flat.outputs):]}
    labels = _layer_labels(ops, flat, model.variable_names, spec, prefix)
    calls: dict = {}
    owner: dict = {}
    for op in ops:
        label = labels.get(op.name)
        call = calls.get(label)
        if call is None:
            call = calls[label] = Call(_Named(label or ""), label or "", True, None)
        owner[op._id] = call
    keras_own = _keras_own_layers(spec)
    suspects, judged = [], 0
    for op in ops:
        call = owner[op._id]
        if call.path in keras_own:
            continue  # a layer of Keras's own, by the tf.keras config: guarded, as in the graph tier
        judged += 1
        if op.type in WATCHED and any(is_float(t) for t in op.outputs):
            suspect = judge(op, call, owner, bounds)
            if suspect is not None:
                function, local, _ = flat.origin.get(op.name[len(prefix):], (None, op.name, None))
                layer = spec.layer(suspect.layer) if suspect.layer else None
                cls = layer.class_name if layer is not None and spec.config else ""
                suspect.layer_class = cls or f"function {function}"
                suspect.op = local
                suspects.append(suspect)
    analysed = time.perf_counter()
    edge_names: list = []
    if suspects:
        edge_names = _confirm(model, spec, options, suspects)
    done = time.perf_counter()
    return GraphFacts(ops=len(ops), user_ops=judged, calls=len(calls), suspects=dedupe(suspects),
                      edge_inputs=edge_names,
                      seconds={"trace": traced - started, "analysis": analysed - traced,
                               "confirmation": done - analysed})


def _keras_own_layers(spec) -> set:
    """Layers that a tf.keras config says are Keras's own, with Keras's own activation (not judged)."""
    if not spec.config:
        return set()  # Keras 3 exports name no classes: every op is judged

    own = set()
    for layer in spec.layers:
        cls = layer.class_name.split(">")[-1]
        act = layer.config.get("activation")
        if cls in BUILTIN_LAYERS and cls != "Lambda" and (act is None or isinstance(act, str)) \
                and not (layer.module or "").startswith("__main__"):
            own.add(layer.qualname)
    return own


def _scope(name: str, flat) -> list[str]:
    """The name scopes an op was created in, across inlined calls, without the call ops' own names."""
    parts: list[str] = []
    chain = []
    current = name
    for _ in range(64):
        origin = flat.origin.get(current)
        if origin is None:
            break
        chain.append(origin[1])
        if origin[2] is None:
            break
        current = origin[2]
    for local in reversed(chain):
        pieces = local.split("/")
        parts.extend(p for p in pieces[:-1] if not _CALL_NAME.match(p))
    return parts


def _layer_labels(ops, flat, variable_names: dict, spec, prefix: str) -> dict:
    """op name -> layer path, from the variables each scope reads and the scopes' names.

    Keras names an op's scopes after the layers that created it, but TensorFlow makes
    a scope unique by appending `_1`, `_2`: a model's `dense` layer may run in scope
    `dense_1` and its `dense_1` layer in `dense_1_2`. The scopes that read a variable
    settle it (the variable is named after its layer); the others lose one suffix when
    the anchored scopes show that suffixes were added.
    """
    scopes = {op.name: _scope(op.name[len(prefix):], flat) for op in ops}
    anchors: dict = {}
    offsets: Counter = Counter()
    suffixed = False
    for op in ops:
        if op.type != "ReadVariableOp" or not op.inputs:
            continue
        var = variable_names.get(op.inputs[0].op.name)
        if var is None or "/" not in var:
            continue
        layer = var.rsplit("/", 1)[0].split("/")
        scope = scopes[op.name]
        for o in range(0, max(len(scope) - len(layer) + 1, 0)):
            window = scope[o:o + len(layer)]
            if all(_same_name(s, l) for s, l in zip(window, layer)):
                anchors[tuple(scope[:o + len(layer)])] = "/".join(layer)
                offsets[o] += 1
                suffixed = suffixed or any(s != l for s, l in zip(window, layer))
                break
    known = {l.qualname for l in spec.layers}
    containers = {q.split("/")[0] for q in known if "/" in q}
    base = offsets.most_common(1)[0][0] if offsets else _common_prefix(scopes.values())
    labels = {}
    for op in ops:
        scope = scopes[op.name]
        label = None
        for k in range(len(scope), 0, -1):
            label = anchors.get(tuple(scope[:k]))
            if label is not None:
                break
        if label is None and len(scope) > base:
            first = _strip(scope[base]) if suffixed else scope[base]
            label = first
            if first in containers and len(scope) > base + 1:
                label = f"{first}/{_strip(scope[base + 1]) if suffixed else scope[base + 1]}"
        labels[op.name] = label
    return labels


def _same_name(scope: str, layer: str) -> bool:
    return scope == layer or (scope.startswith(layer + "_") and scope[len(layer) + 1:].isdigit())


def _strip(name: str) -> str:
    return _SUFFIX.sub("", name)


def _common_prefix(scopes) -> int:
    """1 when every scoped op sits below one outer scope (the model's), else 0."""
    firsts = {s[0] for s in scopes if s}
    return 1 if len(firsts) == 1 and any(len(s) > 1 for s in scopes) else 0


EDGE_EXAMPLES = 4


def _cases(model: ServingModel, spec, options) -> list:
    """The inputs pushed through the signature: a sample, then the edge cases
    kerascheck.tiers.graph.analysis makes for every graph."""
    base, _, synthetic = sample_inputs(model, options, EDGE_EXAMPLES)
    floats = [np.issubdtype(x.dtype, np.floating) for x in base]
    return edge_cases(base, floats, "a synthetic sample" if synthetic else "your data")


def _confirm(model: ServingModel, spec, options, suspects: list) -> list:
    """Run the signature on each edge input, fetching the suspects' tensors; a suspect is confirmed where
    its roots are finite and its result is not (as the trace of a Keras model is confirmed)."""
    index = {name: i for i, name in enumerate(model.fetched)}
    cases = _cases(model, spec, options)
    for label, xs in cases:
        try:
            _, values = model.run(xs, fetched=True)
        except Exception:
            continue  # an input the graph rejects confirms nothing
        confirm_case(suspects, label, values, index)
    return [label for label, _ in cases]
