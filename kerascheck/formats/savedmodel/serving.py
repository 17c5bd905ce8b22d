"""A cleared SavedModel folder's serving signature, made runnable: what the folder format hands the
model, graph and probe tiers (kerascheck.formats.load).

The function, flattened (kerascheck.formats.savedmodel.flatten), is imported inside a
tf.function, with variables created from the checkpoint values kerascheck read itself.
`tf.saved_model.load` is never called: it would also restore the object graph and run the
init op, none of which the checks need. A folder the audit has not cleared (or --unsafe)
is never run.
"""
from __future__ import annotations

import re

import numpy as np

from kerascheck.backend import tensorflow_on
from kerascheck.errors import TierUnavailable, UsageError, error_line
from kerascheck.formats.savedmodel.flatten import FlattenError, flatten
from kerascheck.rules.unsafe_code import audit_savedmodel
from kerascheck.tiers.graph.analysis import FETCHED, MAX_FETCHED, MAX_FETCHED_VALUES, values_per_example
from kerascheck.tiers.graph.bounds import is_float

def load_serving(spec, options) -> "ServingModel":
    """The runnable of a SavedModel folder; TierUnavailable when the audit did not clear it, it has no
    signature kerascheck can run, or the signature takes inputs kerascheck cannot make up."""
    saved = spec.saved
    reason = None
    blocking = [f for f in audit_savedmodel(spec).blocking if "function" in f.evidence or "asset" in f.evidence]
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
        raise TierUnavailable(reason)
    return ServingModel(spec, options)


BATCH_EXAMPLES = 8


LARGE_MODEL_PARAMS = 5_000_000


def _numeric(dtype: str) -> bool:
    return dtype in ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                     "uint16", "uint32", "uint64", "bool")


class ModelError(Exception):
    """The cleared graph cannot be imported or run; the message says why."""


class _Input:
    """One input of the signature: name, shape (batch dimension first) and dtype name."""
    def __init__(self, name: str, shape: tuple, dtype: str):
        self.name, self.shape, self.dtype = name, shape, dtype


class ServingModel:
    """The serving signature of a cleared folder, traced once and runnable on numpy inputs.

    One trace serves every use, as in kerascheck.tiers.graph.trace: the flattened function is
    imported into a tf.function whose extra outputs are the inputs and results of the
    ops the analysis may suspect (budgeted like the graph tier's fetches), so the graph
    the analysis reads is the graph the edge inputs and the batch probe run.
    """

    PREFIX = "served/"
    kind = "serving"  # the graph tier imports its function as saved instead of tracing layer calls
    forward_only = True  # nothing to train with: the probe tier runs its forward-pass probes only

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

            try:
                self._flat = flatten(self.spec.saved, self.signature)
            except FlattenError as exc:
                raise ModelError(str(exc)) from None
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
        tf = tensorflow_on(self.options)
        flat, saved = self.flat, self.spec.saved
        variables = []
        for placeholder, node in flat.captures:
            var = saved.variables.get(node)
            if var is None:
                raise ModelError(f"the signature captures object {node}, which is not a variable")
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
                    size = values_per_example(t)
                    if size <= room:
                        room -= size
                        extra[t.name] = t
            self.fetched = list(extra)
            return list(results) + [tf.identity(t) for t in extra.values()]

        try:
            return tf.function(serve, input_signature=specs, autograph=False).get_concrete_function()
        except Exception as exc:

            raise ModelError(f"TensorFlow refused the graph ({error_line(exc)})") from None


OPEN_FILL = 8  # the size synthetic inputs give a dimension the signature leaves open


def sample_inputs(model: ServingModel, options, n: int, fill: int = OPEN_FILL) -> tuple[list, str, bool]:
    """n examples for the signature: from --data (.npz with x or x_<input name>, or .npy), else made up
    shaped like its inputs (standard normal numbers; small integers for integer inputs)."""
    rng = np.random.default_rng(options.seed)
    if options.data and options.data.endswith((".npz", ".npy")):
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
            raise ModelError(f"synthetic integers out of a lookup's range ({found.group(0)}), and no single "
                              "input drawn below it runs: pass --data with real inputs")
    model.run(xs)
    return xs, notes


_OPEN_SIZE = re.compile(r"Expected size\[\d+\] in \[0, (\d+)\], but got (\d+)")


def runnable_sample(model: ServingModel, spec, options) -> tuple[list, str, bool, list]:
    """The probe's examples; synthetic ones made to fit what the signature takes: open dimensions no
    longer than a slice it makes allows (BERT's positions), ids below the tables they index."""
    # A large model's forward passes dominate the check; two examples still tell a batch apart from one.
    n = BATCH_EXAMPLES if spec.param_count < LARGE_MODEL_PARAMS else 2
    fill = OPEN_FILL
    while True:
        xs, description, synthetic = sample_inputs(model, options, n, fill=fill)
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
