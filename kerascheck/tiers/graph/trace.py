"""The `graph` tier: the forward pass traced to TensorFlow ops, each op attributed to its layer.

One trace with `tf.function`, during which kerascheck records when each layer
call starts and ends (the graph's op counter), so every op belongs to the
innermost layer call that created it: nested models, sub-layers of custom layers
and a layer called twice included. Name scopes would say the same for most
models, but TensorFlow renames a scope it has seen before (`dense_1`), which
collides with real layer names.

Only ops from the user's own code are judged: custom layer classes, Lambdas, and
built-in layers given a custom activation function. Keras's own layers are
known to guard their divisions. The dataflow analysis (`kerascheck.tiers.graph.bounds`)
decides, per op, whether a denominator or a log argument can reach zero and
whether an `exp` can overflow; the suspects are then confirmed by pushing edge
inputs through the same traced function, whose extra outputs are the suspects'
inputs and outputs.
"""
from __future__ import annotations

import inspect
import os
import time

import numpy as np

from kerascheck.errors import TierUnavailable
from kerascheck.options import Options
from kerascheck.tiers.graph.bounds import Bounds, is_float
from kerascheck.tiers.model import import_custom_objects
from kerascheck.tiers.probe.data import load_data, synthesize_inputs
from kerascheck.tiers.probe.roles import InputRole
from kerascheck.tiers.probe.run import prepare
from kerascheck.tiers.probe.setup import loss_from_accepted_arguments
from kerascheck.tiers.graph.analysis import (EDGE_EXAMPLES, FETCHED, MAX_FETCHED, MAX_FETCHED_VALUES, WATCHED, Call,
                                             GraphFacts, confirm_case, creation_frames, dedupe, edge_cases, judge,
                                             library_entry, values_per_example)


class _Recorder:
    """Wraps keras.layers.Layer.__call__ for the duration of one trace."""
    def __init__(self, keras, paths: dict | None = None):
        self.keras = keras
        self.paths = paths or {}  # id(layer) -> the name kerascheck gives it (kerascheck.tiers.modelio)
        self.events: list = []  # (graph version, "enter"/"exit", Call)
        self.stack: list[Call] = []
        self.graph = None
        self._original = None

    def __enter__(self):
        recorder = self
        original = self._original = self.keras.layers.Layer.__call__

        def __call__(layer, *args, **kwargs):
            graph = recorder.graph
            if graph is None:
                return original(layer, *args, **kwargs)
            parent = recorder.stack[-1] if recorder.stack else None
            if parent is None:
                path = ""  # the model itself
            elif id(layer) in recorder.paths:
                path = recorder.paths[id(layer)]  # a layer kerascheck names (a subclass's by attribute path)
            elif not parent.path:
                path = layer.name  # a layer of the model
            else:
                path = f"{parent.path}/{layer.name}"  # inside a nested model or a custom layer
            user, files = _user_code(layer)
            first = args[0] if args else None
            call = Call(layer, path, user, parent, files,
                        first if getattr(first, "graph", None) is graph else None)
            recorder.stack.append(call)
            recorder.events.append((graph.version, "enter", call))
            try:
                out = original(layer, *args, **kwargs)
                if user:
                    import tensorflow as tf

                    call.outputs = [t for t in tf.nest.flatten(out) if getattr(t, "graph", None) is graph
                                    and is_float(t)]
                return out
            finally:
                recorder.events.append((graph.version, "exit", call))
                recorder.stack.pop()

        self.keras.layers.Layer.__call__ = __call__
        return self

    def __exit__(self, *exc):
        self.keras.layers.Layer.__call__ = self._original
        self.graph = None

    def owners(self, graph, offset: int) -> dict:
        """op id -> innermost Call, by one sweep over the recorded events."""
        ops = sorted(graph.get_operations(), key=lambda o: o._id)
        owner: dict = {}
        stack: list = []
        events = self.events
        i = 0
        for op in ops:
            version = op._id - offset
            while i < len(events) and events[i][0] < version:
                _, kind, call = events[i]
                if kind == "enter":
                    stack.append(call)
                elif stack:
                    stack.pop()
                i += 1
            owner[op._id] = stack[-1] if stack else None
        return owner


def _user_code(layer) -> tuple[bool, frozenset]:
    """Whether a layer runs the user's code, and the source files that code lives in."""
    cls = type(layer)
    module = getattr(cls, "__module__", "") or ""
    if module == "keras" or module.startswith(("keras.", "tf_keras.")):
        if cls.__name__ == "Lambda":
            return True, frozenset()  # its function came out of the file; its "filename" is the author's
        activation = getattr(layer, "activation", None)
        act_module = getattr(activation, "__module__", "") or ""
        if callable(activation) and not (act_module == "keras" or act_module.startswith(("keras.", "tf_keras."))):
            return True, frozenset(f for f in (_source_file(activation),) if f)
        return False, frozenset()
    files = set()
    for klass in cls.__mro__:
        mod = getattr(klass, "__module__", "") or ""
        if mod == "keras" or mod.startswith(("keras.", "tf_keras.", "builtins")):
            break
        path = _source_file(klass)
        if path:
            files.add(path)
    return True, frozenset(files)


def _has_user_layers(model) -> bool:
    """Whether any layer (nested ones included) or the model class itself is the user's code."""
    try:
        layers = list(model._flatten_layers(include_self=True, recursive=True))
    except Exception:  # a Keras without the private walk: trace, to be safe
        return True
    return any(_user_code(layer)[0] for layer in layers)


def user_loss(model, spec, options: Options, outputs: int = 1):
    """(callable, name) of the compiled loss when it is the user's own code, else (None, None).

    Resolved only from what the user supplied (--custom-objects) or code already imported
    that registered it: a module named in the file is never imported.
    """
    import keras

    raw = spec.config.get("compile_config") if spec is not None and isinstance(spec.config, dict) else None
    loss = raw.get("loss") if isinstance(raw, dict) else None
    if not isinstance(loss, dict) or outputs != 1:
        return None, None

    custom = import_custom_objects(options.custom_objects) if options.custom_objects else {}
    registered = loss.get("registered_name")
    if loss.get("class_name") == "function" and isinstance(loss.get("config"), str):
        full = loss["config"]
        obj = custom.get(full.split(">")[-1]) or _registered_object(keras, full)
        name = full.split(">")[-1]
    elif isinstance(loss.get("class_name"), str) and isinstance(registered, str):
        cls = custom.get(loss["class_name"]) or _registered_object(keras, registered)
        config = loss.get("config") if isinstance(loss.get("config"), dict) else {}
        try:
            obj = cls.from_config(config) if isinstance(cls, type) else None
        except Exception:  # a Loss whose __init__ refuses a key its own get_config wrote

            obj = loss_from_accepted_arguments(loss, custom)
        name = loss["class_name"]
    else:
        return None, None
    module = getattr(obj, "__module__", "") or ""
    if obj is None or not callable(obj) or module == "keras" or module.startswith(("keras.", "tf_keras.")):
        return None, None
    return obj, name


def _registered_object(keras, name: str):
    try:
        return keras.saving.get_registered_object(name)
    except Exception:
        return None


def _source_file(obj) -> str | None:
    try:
        path = inspect.getsourcefile(obj)
    except (TypeError, OSError):
        path = None
    if path is None and inspect.isclass(obj):
        # A class from a module loaded by path and not in sys.modules: its methods still know their file.
        code = next((v.__code__ for v in vars(obj).values() if inspect.isfunction(v)), None)
        path = code.co_filename if code is not None else None
    return os.path.abspath(path) if path and os.path.isfile(path) else None


def build_graph(info, spec, options: Options, judge_keras: bool = False, always_trace: bool = False) -> GraphFacts:
    """Trace, attribute, analyse and confirm; raises TierUnavailable with the reason when it cannot.

    `info` is the model tier's ModelInfo (or a loaded keras.Model, which is prepared here).
    A model made only of Keras's own layers, activations and loss has nothing to judge,
    so it is not traced unless always_trace (the benchmark and the tests that measure
    the trace). judge_keras=True judges Keras's own layers as if they were user code:
    the tests use it to show the analysis recognises the guards Keras writes.
    """
    import keras
    import tensorflow as tf

    if isinstance(info, keras.Model):
        info = prepare(info, spec, options)
    if not info.io.callable:
        return _graph_of_parts(info, options, judge_keras, always_trace)
    model, io = info.model, info.io
    loss_fn, loss_name = user_loss(model, spec, options, len(io.outputs))
    if not (judge_keras or always_trace or loss_fn is not None or _has_user_layers(model)):
        return GraphFacts(ops=0, user_ops=0, calls=0, suspects=[], edge_inputs=[],
                          seconds={"trace": 0.0, "analysis": 0.0, "confirmation": 0.0}, traced=False)

    input_specs = [tf.TensorSpec((None,) + tuple(p.shape), p.dtype) for p in io.inputs]
    loss_files = frozenset()
    if loss_fn is not None:
        loss_files = frozenset(f for f in (_source_file(loss_fn), _source_file(type(loss_fn))) if f)
    # The user's loss takes labels of a form the file does not say: try --data's, then what the
    # output looks like, then class ids; a loss that takes none of them leaves the forward pass alone.
    label_specs = _label_specs(info, io) if loss_fn is not None else []
    attempts = [(loss_fn, y) for y in label_specs] + [(None, None)]
    current: dict = {}
    recorder = _Recorder(keras, {id(layer): path for path, layer in info.paths.values()})
    fetched: dict = {}
    started = time.perf_counter()

    def forward(*xs):
        loss_fn = current["loss"]
        graph = tf.compat.v1.get_default_graph()
        offset = start_offset(graph)
        recorder.graph = graph
        if loss_fn is not None:
            xs, y_true = xs[:-1], xs[-1]
        out = model(io.pack(list(xs)), training=False)
        if loss_fn is not None:
            # The loss is the user's code too: one more call, with no layer, around it.
            call = Call(None, "", True, None, loss_files, label=f"loss '{loss_name}'")
            mark(graph, "enter", call)
            value = loss_fn(y_true, out)
            call.outputs = [t for t in tf.nest.flatten(value) if is_float(t)]
            mark(graph, "exit", call)
        recorder.graph = None
        tensors = select(graph, offset)
        return out, tensors

    @tf.autograph.experimental.do_not_convert
    def mark(graph, kind, call):
        recorder.events.append((graph.version, kind, call))

    @tf.autograph.experimental.do_not_convert
    def start_offset(graph):
        """op._id minus graph.version: calibrated on the input placeholders that exist already."""
        existing = graph.get_operations()
        return (max(op._id for op in existing) - graph.version) if existing else 1

    # Plain Python over the graph's ops: kept out of autograph, which would otherwise
    # convert its loops and cost as much as the trace itself.
    @tf.autograph.experimental.do_not_convert
    def select(graph, offset):
        owner = recorder.owners(graph, offset)
        # Everything an edge-input run needs to see: the inputs and outputs of every
        # watched op in user code. Chosen before the analysis, so one trace serves both.
        tensors, layer_inputs, home_outputs = {}, {}, {}
        room = [MAX_FETCHED_VALUES]

        def take(t):
            if t.name in tensors or len(tensors) >= MAX_FETCHED:
                return t.name in tensors
            size = values_per_example(t)
            if size > room[0]:
                return False
            room[0] -= size
            tensors[t.name] = t
            return True

        for op in graph.get_operations():
            if op.type not in FETCHED:
                continue
            call = owner.get(op._id)
            home = call.user_owner() if call is not None else None
            if call is not None and (judge_keras or home is not None):
                for t in list(op.inputs) + list(op.outputs):
                    if is_float(t):
                        take(t)
                # And the layer's own input, for confirming at the layer when the model's edge
                # inputs do not reach it at scale (a normalisation upstream, say).
                if home is not None and home.input is not None and is_float(home.input) and take(home.input):
                    layer_inputs[home.path] = (home, home.input.name)
                # And what the user's call returns: an op inside a library function counts
                # only when the user's own output goes non-finite with it.
                if home is not None and id(home) not in home_outputs:
                    home_outputs[id(home)] = [t.name for t in home.outputs if take(t)]
        fetched["owner"], fetched["names"], fetched["layer_inputs"] = owner, list(tensors), layer_inputs
        fetched["home_outputs"] = home_outputs
        return list(tensors.values())

    concrete, loss_failed = None, None
    # Open dimensions stay open in the trace; a model that needs them as Python numbers (KerasHub's
    # DeepLabV3 upsamples by its input's height) is traced again at the sizes the probes feed it.
    shapes = [input_specs]
    if any(d is None for p in io.inputs for d in p.shape):
        if info.raw_data is not None:  # --data: the sizes fit() would see

            try:
                xs = load_data(info.raw_data, io).x
                shapes.append([tf.TensorSpec((None,) + tuple(x.shape[1:]), p.dtype) for x, p in zip(xs, io.inputs)])
            except Exception:  # data the probes refuse is reported by them; the fill below still applies
                pass
        shapes.append([tf.TensorSpec((None,) + tuple(d or io.fill for d in p.shape), p.dtype) for p in io.inputs])
    for n, shaped in enumerate(shapes):
        for fn, y_spec in attempts:
            current.update(loss=fn, y=y_spec)
            recorder.events.clear()
            recorder.stack.clear()
            fetched.clear()
            specs = shaped + ([y_spec] if fn is not None else [])
            with recorder:
                try:
                    concrete = tf.function(forward).get_concrete_function(*specs)
                    break
                except TierUnavailable:
                    raise
                except Exception as exc:
                    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
                    # TensorFlow puts the traced code's stack first and the error itself last.
                    text = lines[-1] if lines and "in user code" in lines[0] else (lines[0] if lines else "")
                    if fn is None and n == len(shapes) - 1:
                        raise TierUnavailable(f"tracing the forward pass failed: {type(exc).__name__}: "
                                              f"{text[:200]}") from None
                    if fn is not None:
                        loss_failed = loss_failed or f"{type(exc).__name__}: {text[:200]}"
        if concrete is not None:
            break
    loss_fn = current["loss"]
    traced = time.perf_counter()

    graph = concrete.graph
    owner = fetched["owner"]
    ops = graph.get_operations()
    bounds = Bounds(*_variables(model, concrete))
    # The Identity ops TensorFlow adds for the fetched tensors are not part of the model.
    n_fetched = len(fetched["names"])
    bounds.fetch_ops = {t.op.name for t in concrete.outputs[len(concrete.outputs) - n_fetched:]} if n_fetched else set()
    suspects = []
    user_ops = 0
    for op in ops:
        call = owner.get(op._id)
        home = call.user_owner() if call is not None else None
        if home is None and judge_keras and call is not None:
            home = call
        if home is None:
            continue
        suspect = None
        if op.type in WATCHED and any(is_float(t) for t in op.outputs):
            suspect = judge(op, home, owner, bounds)
            if suspect is not None:
                suspect.home_outputs = fetched["home_outputs"].get(id(home), [])
                suspects.append(suspect)
        if judge_keras:
            user_ops += 1
        elif (suspect.library if suspect is not None else library_entry(creation_frames(op))) is None:
            user_ops += 1  # written by the user's own expression, not inside a library function
    analysed = time.perf_counter()

    edge_names: list = []
    if suspects:
        edge_names = _confirm(concrete, fetched["names"], suspects, info, options, fetched["layer_inputs"],
                              targets=current["y"] if loss_fn is not None else None)
    # What a keras.ops function wrote (logsumexp, sparsemax, normalize) is reported only
    # when an edge input proves it: its guards take forms the analysis need not know.
    suspects = [s for s in suspects if s.confirmed or not s.in_keras_op]
    done = time.perf_counter()
    calls = sum(1 for e in recorder.events if e[1] == "enter")
    return GraphFacts(ops=len(ops), user_ops=user_ops, calls=calls, suspects=dedupe(suspects),
                      edge_inputs=edge_names,
                      seconds={"trace": traced - started, "analysis": analysed - traced, "confirmation": done - analysed},
                      loss_untraced=f"the loss '{loss_name}' took none of the labels tried ({loss_failed})"
                      if loss_failed and loss_fn is None and label_specs else None)


def _graph_of_parts(info, options: Options, judge_keras: bool, always_trace: bool) -> GraphFacts:
    """A model with no call() (a VAE or a GAN that only trains through train_step): each Functional part it
    holds is traced on its own, with its layers named as the whole model names them."""
    from dataclasses import replace


    if not info.io.parts:
        raise TierUnavailable(info.io.model.__class__.__name__ + " has no call() and holds no Functional part "
                              "that kerascheck could trace")
    facts = []
    for _, part in info.io.parts:
        first = part.inputs == info.io.inputs
        part_info = replace(info, model=part.model, io=part, roles=[InputRole() for _ in part.inputs], meanings=[],
                            raw_data=info.raw_data if first else None, sample_x=[], output_shapes=[])
        facts.append(build_graph(part_info, None, options, judge_keras, always_trace))
    traced = [f for f in facts if f.traced]
    return GraphFacts(ops=sum(f.ops for f in facts), user_ops=sum(f.user_ops for f in facts),
                      calls=sum(f.calls for f in facts), suspects=[s for f in facts for s in f.suspects],
                      edge_inputs=list(dict.fromkeys(e for f in facts for e in f.edge_inputs)),
                      seconds={k: sum(f.seconds.get(k, 0.0) for f in facts)
                               for k in ("trace", "analysis", "confirmation")},
                      traced=bool(traced))


def _variables(model, concrete) -> tuple[dict, dict]:
    """For each captured resource placeholder: the variable's path (for readable operands) and,
    for non-trainable variables, the range of the values it holds.

    Trainable weights are unbounded to the analysis (training can move them through
    zero); statistics a layer keeps itself (a moving variance) are what they are at
    inference, so their stored range counts.
    """
    by_handle = {}
    for v in model.variables:
        handle = getattr(getattr(v, "value", v), "handle", None)
        if handle is not None:
            by_handle[id(handle)] = v
    names, ranges = {}, {}
    for external, internal in concrete.graph.captures:
        v = by_handle.get(id(external))
        if v is None:
            continue
        names[internal.op.name] = v.path
        if not v.trainable:
            try:
                values = np.asarray(v.numpy(), dtype=np.float64)
            except Exception:
                continue
            if values.size and np.all(np.isfinite(values)):
                ranges[internal.op.name] = (float(values.min()), float(values.max()))
    return names, ranges


def edge_inputs(info, options: Options) -> list[tuple[str, list]]:
    """The inputs pushed through the model: the sample itself, then the edge cases.

    Categorical inputs (ids) keep their values in every case: scaling an id only
    makes it invalid, which says nothing about the model's arithmetic.
    """

    rng = np.random.default_rng(options.seed)
    if info.raw_data is not None:
        base = [x[:EDGE_EXAMPLES] for x in load_data(info.raw_data, info.io).x]
        what = "your data"
    else:
        base = synthesize_inputs(info.io, info.roles, rng, EDGE_EXAMPLES)
        what = "a synthetic sample"
    floats = [np.issubdtype(x.dtype, np.floating) and not role.categorical for x, role in zip(base, info.roles)]
    return edge_cases(base, floats, what)


def _label_specs(info, io) -> list:
    """TensorSpecs for the labels a user's loss may take, most likely first (--data's own first)."""
    import tensorflow as tf

    out = tuple(io.outputs[0].shape) if io.outputs else ()
    specs = []
    raw = info.raw_data
    ys = (list(raw.ys.values()) + raw.positional_y) if raw is not None else []
    if ys:
        y = ys[0]
        specs.append(tf.TensorSpec((None,) + tuple(y.shape[1:]), "float32" if y.dtype.kind == "f" else "int64"))
    specs.append(tf.TensorSpec((None,) + out, "float32"))
    if out:
        specs.append(tf.TensorSpec((None,) + out[:-1], "int64"))  # class ids, as sparse crossentropy takes
    unique = []
    for spec in specs:
        if all(spec != other for other in unique):
            unique.append(spec)
    return unique


A_LABEL_OF_ZERO = "a label of 0"
LABELS_OF_ZERO = "labels that are all 0"


def _labels_for(targets, info, n: int, options: Options) -> np.ndarray:
    """n labels of the traced form: --data's own when they fit it, else random ones (never all 0)."""
    shape = (n,) + tuple(d or info.io.fill for d in targets.shape[1:])
    raw = info.raw_data
    given = (list(raw.ys.values()) + raw.positional_y) if raw is not None else []
    if given and tuple(given[0].shape[1:]) == shape[1:] and len(given[0]) >= n:
        return np.asarray(given[0][:n]).astype(targets.dtype.as_numpy_dtype)
    rng = np.random.default_rng(options.seed)
    if targets.dtype.is_integer:
        units = (info.io.outputs[0].shape[-1] if info.io.outputs and info.io.outputs[0].shape else 2) or 2
        return rng.integers(1, max(int(units), 2), size=shape).astype(targets.dtype.as_numpy_dtype)
    return rng.random(shape).astype(targets.dtype.as_numpy_dtype)


def _confirm(concrete, names: list, suspects: list, info, options: Options, layer_inputs: dict,
             targets=None) -> list:
    """Run the traced function on each edge input; a suspect is confirmed where its roots are
    finite and its result is not (so the op itself made the Inf/NaN, not something upstream).

    Then, for a layer whose one remaining suspect no model input confirmed, the same edge
    cases are made from the layer's own input and pushed through that layer alone.
    """
    import tensorflow as tf

    index = {name: i for i, name in enumerate(names)}
    cases = edge_inputs(info, options)
    if targets is not None:
        # A loss runs with labels: the data's own (or random ones of the traced form) with every input
        # case, then labels that are all 0, the one edge case of labels (a batch of padding or of
        # one class): a loss dividing by the count of non-zero labels gives 0/0 only there.
        labels = _labels_for(targets, info, len(cases[0][1][0]), options)
        one_zero = labels.copy()
        one_zero[:1] = 0  # one example's labels: a loss dividing by each label meets it at once
        cases = [(label, list(xs) + [labels]) for label, xs in cases] + \
                [(A_LABEL_OF_ZERO, list(cases[0][1]) + [one_zero]),
                 (LABELS_OF_ZERO, list(cases[0][1]) + [np.zeros_like(labels)])]
    sample_values = None
    for label, xs in cases:
        try:
            # --data may hold int64 ids for an int32 input: cast to what the trace was made for.
            dtypes = [spec.dtype for spec in concrete.structured_input_signature[0]]
            _, values = concrete(*[tf.constant(x, dtype=d) if np.asarray(x).dtype.kind in "biuf" else tf.constant(x)
                                   for x, d in zip(xs, dtypes)])
        except Exception:
            continue  # an input the model rejects (say, token ids out of range) confirms nothing
        values = [v.numpy() for v in values]
        if sample_values is None:
            sample_values = values
        confirm_case(suspects, label, values, index)
    if sample_values is not None:
        _confirm_at_layers(suspects, layer_inputs, sample_values, index)
    return [label for label, _ in cases]


def _confirm_at_layers(suspects: list, layer_inputs: dict, values: list, index: dict) -> None:
    import tensorflow as tf

    for path, (call, name) in layer_inputs.items():
        open_ = [s for s in suspects if s.layer == (path or None) and not s.confirmed and s.library is None]
        if len(open_) != 1 or name not in index:
            continue  # with several suspects, a non-finite output would not say which op made it
        x = values[index[name]]
        if not np.all(np.isfinite(x)):
            continue
        scale = float(np.mean(np.abs(x))) or 1.0
        for label, variant in (("an all-zero input to the layer", np.zeros_like(x)),
                               ("a constant row into the layer", np.full_like(x, scale)),
                               ("the layer's input x1e3", x * 1e3), ("the layer's input x1e4", x * 1e4)):
            try:
                out = _call_layer(call.layer, tf.constant(variant))
            except Exception:
                break  # a layer that rejects the variant confirms nothing
            out = [np.asarray(o) for o in tf.nest.flatten(out)]
            bad = [o for o in out if o.dtype.kind == "f" and not np.all(np.isfinite(o))]
            if bad:
                if not open_[0].confirmed:
                    open_[0].nonfinite = "NaN" if any(np.any(np.isnan(o)) for o in bad) else "Inf"
                    open_[0].confirmed_at = "layer"
                open_[0].confirmed.append(label)


def _call_layer(layer, x):
    try:
        return layer(x, training=False)
    except TypeError:  # a call() without a training argument
        return layer(x)
