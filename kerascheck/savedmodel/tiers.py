"""The model, graph and probe tiers for a SavedModel folder (the engine's _TierBuilder dispatches here).

* model: the folder cleared by the audit (or --unsafe) and its serving signature made
  runnable: the function, flattened (kerascheck.savedmodel.flatten), imported inside a
  tf.function, with variables created from the checkpoint values kerascheck read itself.
  `tf.saved_model.load` is never called: it would also restore the object graph and run
  the init op, none of which the checks need.
* graph: the same interval analysis and suspects as kerascheck.graph, over the flattened
  function imported into a tf.Graph (importing runs nothing); suspects are confirmed by
  running the signature on edge inputs and fetching the op's own inputs and result.
* probe: batch-dependence from calls of the signature. Training probes have nothing to
  train with: their rules are skipped with that reason (ProbeResults.not_applicable).
"""
from __future__ import annotations

import os
import re
import time
from collections import Counter

import numpy as np

from kerascheck.savedmodel.audit import audit

BATCH_EXAMPLES = 8
LARGE_MODEL_PARAMS = 5_000_000
_CALL_NAME = re.compile(r"^(Stateful)?PartitionedCall(_\d+)?$")
_SUFFIX = re.compile(r"_\d+$")


# ------------------------------------------------------------------ the tiers


TRAINING_REASON = "a SavedModel keeps no optimizer or loss to train with; kerascheck only runs its serving signature"


def load(builder) -> None:
    """The model tier: refuse an uncleared folder; otherwise a ServingModel, built lazily."""
    from kerascheck.engine import _Unavailable
    from kerascheck.modeltier import Options

    if builder.options is None:
        builder.options = Options()
    spec, options = builder.facts.spec, builder.options
    saved = spec.saved
    reason = None
    blocking = [f for f in audit(spec).blocking if "function" in f.evidence or "asset" in f.evidence]
    if blocking and not options.unsafe:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        reason = (f"the folder was not run: {first.message.rstrip('.')}{more}; kerascheck runs no graph that holds "
                  "such ops (rerun with --unsafe only if you trust the folder)")
    elif saved.serving is None:
        why = "; ".join(f"'{k}': {v}" for k, v in sorted(saved.other_signatures.items())[:3])
        reason = "the folder has no signature kerascheck can run" + (f" ({why})" if why else "")
    else:
        bad = [f"{name} ({dtype})" for name, dtype, shape, _ in saved.serving.inputs
               if shape is None or not _numeric(dtype)]
        if bad:
            reason = (f"the signature '{saved.serving.key}' takes {', '.join(bad)}, inputs kerascheck cannot make "
                      "up (numbers of a known rank only)")
    if reason:
        builder.failed["model"] = builder.failed["probe"] = reason
        raise _Unavailable(reason)
    builder.facts.model = ServingModel(spec, options)
    builder.result.tiers.append("model")


def graph(builder) -> None:
    from kerascheck.engine import _Unavailable

    try:
        builder.facts.graph = analyse(builder.facts.model, builder.facts.spec, builder.options)
    except _ModelError as exc:
        raise _Unavailable(f"the serving graph could not be analysed: {exc}") from None
    except Exception as exc:
        if os.environ.get("KERASCHECK_DEBUG"):
            raise
        from kerascheck.modelio import error_line

        raise _Unavailable(f"the serving graph could not be analysed: {error_line(exc)}") from None
    builder.result.tiers.append("graph")
    builder.result.graph = builder.facts.graph


def probe(builder) -> None:
    from kerascheck.engine import _Unavailable

    model, spec, options = builder.facts.model, builder.facts.spec, builder.options
    started = time.monotonic()
    from kerascheck.probe import ProbeResults

    failure, batch, drawn = None, None, []
    description, synthetic = "no examples", options.data is None
    try:
        sample, description, synthetic, drawn = _runnable_sample(model, spec, options)
        batch = _batch_dependence(model, sample) if "batch" in builder.want else None
    except _ModelError as exc:
        failure = f"the signature could not be run: {exc}"
    except Exception as exc:  # TensorFlow refusing the graph is a fact about the folder
        if os.environ.get("KERASCHECK_DEBUG"):
            raise
        from kerascheck.modelio import error_line

        failure = f"the signature could not be run: {error_line(exc)}"
    results = ProbeResults(
        device=options.device_used or "CPU", synthetic=synthetic,
        data_description=f"{description}, through signature '{spec.saved.serving.key}'",
        defaults=[], loss_name="", task="regression", batch=batch)
    results.inputs_drawn = drawn
    if failure:
        results.failures["batch"] = failure
    # The engine skips each rule whose probe is listed here, with this reason as it stands.
    results.not_applicable = {need: TRAINING_REASON for need in ("train", "overfit", "activations", "data")}
    results.seconds = time.monotonic() - started
    builder.facts.probe = results
    builder.result.tiers.append("probe")
    builder.result.probe = results


_OUT_OF_RANGE = re.compile(r"indices\[[^\]]*\] = (-?\d+) is not in \[0, (\d+)\)")


def fit_ids(model, xs: list, rng, attempts: int = 4) -> tuple[list, list]:
    """Synthetic integer inputs a lookup of the signature refuses (BERT's segment ids index a table of
    two rows) drawn again below the size the error names, one input at a time until the signature
    runs. Returns the inputs and a line for each input redrawn; an error of another kind is raised."""
    notes = []
    for _ in range(attempts):
        try:
            model.run(xs)
            return xs, notes
        except Exception as exc:
            found = _OUT_OF_RANGE.search(str(exc))
            if found is None:
                raise
            bound = int(found.group(2))
        for k, (x, spec_input) in enumerate(zip(xs, model.inputs)):
            if not np.issubdtype(x.dtype, np.integer) or x.size == 0 or int(x.max()) < bound:
                continue
            trial = list(xs)
            trial[k] = rng.integers(0, max(bound, 1), size=x.shape).astype(x.dtype)
            try:
                model.run(trial)
            except Exception as exc:
                again = _OUT_OF_RANGE.search(str(exc))
                if again is not None and int(again.group(2)) == bound:
                    continue  # still refused at that size: not this input's table
                if again is None:
                    raise
            xs = trial
            notes.append(f"{spec_input.name}: integers below {bound} (the signature refused larger ones)")
            break
        else:
            raise _ModelError(f"synthetic integers out of a lookup's range ({found.group(0)}), and no single "
                              "input drawn below it runs: pass --data with real inputs")
    model.run(xs)
    return xs, notes


def _numeric(dtype: str) -> bool:
    return dtype in ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                     "uint16", "uint32", "uint64", "bool")


class _ModelError(Exception):
    """The cleared graph cannot be imported or run; the message says why."""


# --------------------------------------------------------------- the runnable


class _Input:
    """One input of the signature: name, shape (batch dimension first) and dtype name."""

    def __init__(self, name: str, shape: tuple, dtype: str):
        self.name, self.shape, self.dtype = name, shape, dtype


class ServingModel:
    """The serving signature of a cleared folder, traced once and runnable on numpy inputs.

    One trace serves every use, as in kerascheck.graph: the flattened function is
    imported into a tf.function whose extra outputs are the inputs and results of the
    ops the analysis may suspect (budgeted like the graph tier's fetches), so the graph
    the analysis reads is the graph the edge inputs and the batch probe run.
    """

    PREFIX = "served/"

    def __init__(self, spec, options):
        self.spec, self.options = spec, options
        self.signature = spec.saved.serving
        self.inputs = [_Input(name, shape, dtype) for name, dtype, shape, _ in self.signature.inputs]
        self._flat = None
        self._concrete = None
        self.fetched: list = []  # names of the extra outputs, in order
        self.variable_names: dict = {}  # captured placeholder op name -> variable name
        self.variable_ranges: dict = {}  # the same, for non-trainable variables: (min, max) of their values

    @property
    def flat(self):
        if self._flat is None:
            from kerascheck.savedmodel.flatten import FlattenError, flatten

            try:
                self._flat = flatten(self.spec.saved, self.signature)
            except FlattenError as exc:
                raise _ModelError(str(exc)) from None
        return self._flat

    def count_params(self) -> int:
        return self.spec.param_count

    @property
    def concrete(self):
        if self._concrete is None:
            self._concrete = self._trace()
        return self._concrete

    def run(self, xs: list, fetched: bool = False) -> tuple[list, list]:
        """(signature outputs, the extra fetched tensors when asked) as numpy arrays for inputs `xs`."""
        import tensorflow as tf

        values = self.concrete(*[tf.constant(x) for x in xs])
        n = len(self.flat.outputs)
        return [v.numpy() for v in values[:n]], ([v.numpy() for v in values[n:]] if fetched else [])

    def _trace(self):
        from kerascheck.bounds import is_float
        from kerascheck.graph import FETCHED, MAX_FETCHED, MAX_FETCHED_VALUES, _values_per_example

        tf = _device(self.options)
        flat, saved = self.flat, self.spec.saved
        variables = []
        for placeholder, node in flat.captures:
            var = saved.variables.get(node)
            if var is None:
                raise _ModelError(f"the signature captures object {node}, which is not a variable")
            value = saved.checkpoint.get_tensor(var.key)
            variables.append((placeholder, var, tf.Variable(value, trainable=False)))
            if not var.trainable and _numeric(var.dtype):
                values = np.asarray(value, dtype=np.float64)
                if values.size and np.all(np.isfinite(values)):
                    self.variable_ranges[placeholder] = (float(values.min()), float(values.max()))
        outputs = [t for _, t in flat.outputs]
        specs = [tf.TensorSpec([None if d is None else d for d in shape], dtype)
                 for _, _, dtype, shape in flat.inputs]
        ranges, self.variable_ranges = self.variable_ranges, {}

        def serve(*xs):
            graph = tf.compat.v1.get_default_graph()
            mapping = {f"{placeholder}:0": x for (placeholder, _, _, _), x in zip(flat.inputs, xs)}
            for placeholder, var, v in variables:
                captured = graph.capture(v.handle)
                mapping[f"{placeholder}:0"] = captured
                self.variable_names[captured.op.name] = var.name
                if placeholder in ranges:
                    self.variable_ranges[captured.op.name] = ranges[placeholder]
            results = tf.graph_util.import_graph_def(flat.graph_def, input_map=mapping, return_elements=outputs,
                                                     name=self.PREFIX[:-1])
            # Everything an edge input must show: the inputs and results of every op the
            # analysis may suspect. Chosen before the analysis, so one trace serves both.
            extra, room = {}, MAX_FETCHED_VALUES
            for op in graph.get_operations():
                if op.type not in FETCHED or not op.name.startswith(self.PREFIX):
                    continue
                for t in list(op.inputs) + list(op.outputs):
                    if t.name in extra or not is_float(t) or len(extra) >= MAX_FETCHED:
                        continue
                    size = _values_per_example(t)
                    if size <= room:
                        room -= size
                        extra[t.name] = t
            self.fetched = list(extra)
            return list(results) + [tf.identity(t) for t in extra.values()]

        try:
            return tf.function(serve, input_signature=specs, autograph=False).get_concrete_function()
        except Exception as exc:
            from kerascheck.modelio import error_line

            raise _ModelError(f"TensorFlow refused the graph ({error_line(exc)})") from None


def _device(options):
    """TensorFlow on the device asked for (as modeltier.setup_backend does, without importing Keras)."""
    from kerascheck.errors import UsageError
    from kerascheck.savedmodel.reader import import_tensorflow

    tf = import_tensorflow()
    if options.device_used is None:
        gpus = tf.config.list_physical_devices("GPU")
        if options.device == "gpu" and not gpus:
            raise UsageError("--device gpu was given but TensorFlow sees no GPU (use --device auto or cpu)")
        if options.device == "cpu" and gpus:
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:
                pass  # already initialised in this process: the variables still go where asked below
            gpus = []
        options.device_used = "GPU" if gpus else "CPU"
    return tf


# ---------------------------------------------------------------- the graph


class _Named:
    def __init__(self, name: str):
        self.name = name


def analyse(model: ServingModel, spec, options):
    """GraphFacts for the serving function: suspects from the interval analysis, confirmed by edge inputs."""
    from kerascheck.bounds import Bounds, is_float
    from kerascheck.graph import WATCHED, Call, GraphFacts, _dedupe, _judge

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
            suspect = _judge(op, call, owner, bounds)
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
    return GraphFacts(ops=len(ops), user_ops=judged, calls=len(calls), suspects=_dedupe(suspects),
                      edge_inputs=edge_names,
                      seconds={"trace": traced - started, "analysis": analysed - traced,
                               "confirmation": done - analysed})


def _keras_own_layers(spec) -> set:
    """Layers that a tf.keras config says are Keras's own, with Keras's own activation (not judged)."""
    if not spec.config:
        return set()  # Keras 3 exports name no classes: every op is judged
    from kerascheck.keras_names import BUILTIN_LAYERS

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


# ---------------------------------------------------------- confirmation


EDGE_EXAMPLES = 4


OPEN_FILL = 8  # the size synthetic inputs give a dimension the signature leaves open


def _inputs(model: ServingModel, options, n: int, fill: int = OPEN_FILL) -> tuple[list, str, bool]:
    """n examples for the signature: from --data (.npz with x or x_<input name>, or .npy), else made up
    shaped like its inputs (standard normal numbers; small integers for integer inputs)."""
    rng = np.random.default_rng(options.seed)
    if options.data and options.data.endswith((".npz", ".npy")):
        from kerascheck.errors import UsageError

        try:
            loaded = np.load(options.data, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--data {options.data}: cannot read it as .npz or .npy ({exc})") from None
        arrays = {"x": loaded} if isinstance(loaded, np.ndarray) else {k: loaded[k] for k in loaded.files}
        keys = ["x"] if "x" in arrays and len(model.inputs) == 1 else [f"x_{i.name}" for i in model.inputs]
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise UsageError(f"--data {options.data}: the signature's inputs need arrays {', '.join(keys)}; "
                             f"missing {missing[0]}")
        xs = [np.asarray(arrays[k][:n]).astype(i.dtype) for k, i in zip(keys, model.inputs)]
        return xs, f"{len(xs[0])} examples from {options.data}", False
    xs = []
    for i in model.inputs:
        shape = (n,) + tuple(d if d is not None else fill for d in i.shape[1:])
        if i.dtype == "bool":
            xs.append(rng.integers(0, 2, size=shape).astype(bool))
        elif "int" in i.dtype:
            xs.append(rng.integers(0, 10, size=shape).astype(i.dtype))
        else:
            xs.append(rng.standard_normal(shape).astype(i.dtype if i.dtype != "bfloat16" else "float32"))
    return xs, f"{n} synthetic examples shaped like the signature's inputs", True


def _cases(model: ServingModel, spec, options) -> list:
    """The inputs pushed through the signature: a sample, then the edge cases kerascheck.graph uses."""
    from kerascheck.graph import edge_cases

    base, _, synthetic = _inputs(model, options, EDGE_EXAMPLES)
    floats = [np.issubdtype(x.dtype, np.floating) for x in base]
    return edge_cases(base, floats, "a synthetic sample" if synthetic else "your data")


def _confirm(model: ServingModel, spec, options, suspects: list) -> list:
    """Run the signature on each edge input, fetching the suspects' tensors; a suspect is confirmed where
    its roots are finite and its result is not (as kerascheck.graph._confirm does for traced models)."""
    from kerascheck.graph import confirm_case

    index = {name: i for i, name in enumerate(model.fetched)}
    cases = _cases(model, spec, options)
    for label, xs in cases:
        try:
            _, values = model.run(xs, fetched=True)
        except Exception:
            continue  # an input the graph rejects confirms nothing
        confirm_case(suspects, label, values, index)
    return [label for label, _ in cases]


# ----------------------------------------------------------------- probes


_OPEN_SIZE = re.compile(r"Expected size\[\d+\] in \[0, (\d+)\], but got (\d+)")


def _runnable_sample(model: ServingModel, spec, options) -> tuple[list, str, bool, list]:
    """The probe's examples; synthetic ones made to fit what the signature takes: open dimensions no
    longer than a slice it makes allows (BERT's positions), ids below the tables they index."""
    # A large model's forward passes dominate the check; two examples still tell a batch apart from one.
    n = BATCH_EXAMPLES if spec.param_count < LARGE_MODEL_PARAMS else 2
    fill = OPEN_FILL
    while True:
        xs, description, synthetic = _inputs(model, options, n, fill=fill)
        if not synthetic:
            return xs, description, synthetic, []
        try:
            xs, drawn = fit_ids(model, xs, np.random.default_rng(options.seed))
        except Exception as exc:
            found = _OPEN_SIZE.search(str(exc))
            if found is None or int(found.group(1)) >= fill or int(found.group(1)) < 1:
                raise
            fill = int(found.group(1))
            continue
        if fill != OPEN_FILL:
            drawn.append(f"open dimensions of {fill} (the signature refused {OPEN_FILL})")
        return xs, description, synthetic, drawn


def _batch_dependence(model: ServingModel, xs: list) -> dict:
    """The batch-dependence probe through the signature: whole batch, one at a time, shuffled."""
    n = len(xs[0])
    whole = [np.asarray(o, dtype=np.float64) for o in model.run(xs)[0]]
    singles = [model.run([x[i:i + 1] for x in xs])[0] for i in range(n)]
    single = [np.concatenate([np.asarray(s[k], dtype=np.float64) for s in singles]) for k in range(len(whole))]
    shuffled = whole
    if n > 2:  # two examples: one at a time already tells whether they see each other
        perm = np.random.default_rng(7).permutation(n)
        shuffled = []
        for k, out in enumerate(model.run([x[perm] for x in xs])[0]):
            back = np.empty_like(whole[k])
            back[perm] = np.asarray(out, dtype=np.float64)
            shuffled.append(back)
    scale = 1.0 + max(float(np.max(np.abs(w))) if w.size else 0.0 for w in whole)
    diff = lambda a, b: max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b))
    return {"examples": n, "max_diff_single": diff(whole, single), "max_diff_shuffled": diff(whole, shuffled),
            "tolerance": 1e-4 * scale, "first_layer": None,
            "outputs_finite": all(bool(np.all(np.isfinite(w))) for w in whole)}
