"""The labels in --data disagree with the output activation or the loss.

## What it does
Reads the labels of `--data` (`y` for one output; `y_<output name>`, `y_<i>` or a
list for several) and compares them, output by output, with what the output's
activation can produce and what its compiled loss expects. Needs `--data` with
labels; skipped without it. Rows that hold NaN or Inf are left out (that is
`nonfinite-data`'s finding) and the message says so.

Errors (training cannot succeed):

* targets outside the range of the output activation — sigmoid/softmax [0, 1],
  tanh/softsign [-1, 1], relu/softplus/exponential >= 0, relu6 [0, 6], elu >= -1,
  and the like — for a loss that compares the output with the target (MSE, MAE,
  Huber, log-cosh, MAPE, MSLE, Poisson, KL), when at least 1% of them are out of
  reach (a warning below that);
* multi-hot rows (several 1s, or none) with a softmax output or a categorical
  loss, and a softmax over one unit with labels that are not all 1;
* integer class ids with `categorical_crossentropy`, one-hot rows with
  `sparse_categorical_crossentropy`, class ids outside the output's units or not
  whole numbers with the sparse loss;
* `binary_crossentropy` with labels outside [0, 1] (-1/+1, class ids 0..C-1);
  categorical crossentropy with negative labels;
* label shapes the output only matches by broadcasting (a 2-unit output trained
  on one label column) or does not match at all;
* losses undefined on the labels: MAPE with zero targets, Poisson with negative
  targets, KL divergence with targets outside [0, 1], MSLE with targets <= -1;
* a single label value (or row) for every example.

Warnings (training works, worse): exclusive one-hot rows with independent
sigmoids (binary crossentropy, or sigmoid with categorical crossentropy) or a
softmax with binary crossentropy; class labels — one-hot or multi-hot rows, 0/1
labels, or ids 0..C-1 with at most 10 classes — trained with a regression loss
(MSE, MAE, log-cosh, Huber, MAPE; Poisson for rows only, since its targets are
counts); categorical label rows that do not sum to 1; MSLE with targets in
(-1, 0); targets out of reach of an activation kerascheck only measured.

The activation is read from the config for Keras's own layers and activations.
When the output layer or its activation is custom, the output is judged by what
it measured when it ran the model (probabilities, independent probabilities or
unbounded values), and the message says so; when the model was not run
(`--static`, or it could not be loaded), nothing is said about that output's
activation. Where `softmax-loss-mismatch` flags the same output's activation and
loss from the config alone, its finding is folded under this one.

## Why is this bad?
The loss compares the output with the labels. A tanh output cannot reach a
target of 7, a sigmoid cannot reach -60, and a softmax cannot say "two labels at
once": the loss stays high, the output saturates and its gradients vanish.
Class ids fed to a loss that wants one-hot rows (or the reverse) make `fit()`
fail, or, where Keras broadcasts, train every unit on the same column. A
regression loss on class labels orders the classes and gives scores that are not
probabilities. Binary crossentropy is unbounded below for labels outside [0, 1],
MAPE divides by zero targets, and Poisson and KL divergence are undefined on
negative ones: the loss no longer measures the fit.

## How to fix
Make the labels, the activation and the loss tell the same story: one-hot rows
of exclusive classes with a softmax and `categorical_crossentropy` (class ids
with `sparse_categorical_crossentropy`), multi-hot rows with sigmoids and
`binary_crossentropy`, 0/1 labels with one sigmoid unit and
`binary_crossentropy`, real-valued targets with a linear output and a regression
loss, with the targets standardised. Each finding writes the corrected
`Dense(...)` and `compile(...)` lines.

## Example
```python
y = keras.utils.to_categorical(labels, 5)  # one class per example
outputs = keras.layers.Dense(5, activation="sigmoid")(x)
model.compile(optimizer="adam", loss="binary_crossentropy")
```
Use instead:
```python
outputs = keras.layers.Dense(5, activation="softmax")(x)
model.compile(optimizer="adam", loss="categorical_crossentropy")
```
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.facts.topology import ACTIVATION_LAYERS, graph_of
from kerascheck.rule import Rule, Skip

RULE = Rule(name="label-mismatch", code="KC204", severity="error", tier="spec", needs=("arrays", "outputs"))

MAX_VALUES = 2_000_000  # labels judged at most (rows x columns): np.unique sorts them
MAX_CLASSES = 10  # "few distinct values": integer labels 0..C-1 read as classes under a regression loss
MIN_ROWS = 10  # rows needed before "every row is one-hot" says the classes are exclusive
ERROR_SHARE = 0.01  # unreachable targets from this share up make training fail, below it they only hurt
INF = math.inf

BINARY = {"binary_crossentropy", "binary_focal_crossentropy"}
CATEGORICAL = {"categorical_crossentropy", "categorical_focal_crossentropy"}
SPARSE = {"sparse_categorical_crossentropy"}
# Losses that fit the output to the target value by value.
REGRESSION = {"mean_squared_error", "mean_absolute_error", "log_cosh", "huber", "huber_loss",
              "mean_absolute_percentage_error", "poisson"}
DIRECT = REGRESSION | {"mean_squared_logarithmic_error", "kl_divergence"}

# Keras's activations (keras.activations), by the name a config gives them.
KERAS_ACTIVATIONS = {
    "linear", "relu", "relu6", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "swish", "silu", "softplus",
    "softsign", "exponential", "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu", "log_softmax", "mish",
    "celu", "glu", "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "log_sigmoid", "sparse_plus",
    "squareplus", "sparsemax", "sparse_sigmoid", "threshold", "prelu",
}
# What each activation can output, limits included (a sigmoid approaches 0 and 1, and 0/1 labels are
# its ordinary targets). Activations not listed are unbounded.
REACH = {
    "sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "sparse_sigmoid": (0.0, 1.0),
    "sparsemax": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "hard_tanh": (-1.0, 1.0),
    "relu": (0.0, INF), "relu6": (0.0, 6.0), "softplus": (0.0, INF), "exponential": (0.0, INF),
    "squareplus": (0.0, INF), "sparse_plus": (0.0, INF), "elu": (-1.0, INF), "celu": (-1.0, INF),
    "selu": (-1.7581, INF), "gelu": (-0.17, INF), "silu": (-0.2785, INF), "swish": (-0.2785, INF),
    "mish": (-0.3088, INF), "hard_silu": (-0.375, INF), "hard_swish": (-0.375, INF),
    "log_softmax": (-INF, 0.0), "log_sigmoid": (-INF, 0.0),
}
# What an output measured by running the model behaves like.
MEASURED = {"probabilities": "softmax", "independent probabilities": "sigmoid", "unbounded": "linear"}


@dataclass
class _Output:
    name: str  # the output layer's name (or the port's, for a model that names no output layers)
    qualname: str | None
    layer: str | None  # the layer that applies the activation: findings point at it
    layer_class: str | None
    builtin: bool  # the layer is one of Keras's own (fixes can name its class)
    activation: str | None  # as the config names it (what softmax-loss-mismatch reads)
    act: str | None  # what the output behaves like, for judging; None: nothing is said about it
    measured: str | None  # the measured meaning, when act comes from running the model
    reach: tuple  # (lowest, highest) value the output can take
    units: int | None
    shape: tuple | None  # without the batch dimension, from the loaded model
    loss: object  # LossSpec or None
    index: int  # position among the loaded model's outputs (for y_<i> and positional labels)
    several: bool
    port: str | None = None  # the loaded model's name for the output, when it differs from the layer's

    @property
    def loss_name(self) -> str | None:
        return None if self.loss is None or self.loss.custom else self.loss.name

    @property
    def logits(self) -> bool:
        return bool(self.loss is not None and self.loss.from_logits)


@dataclass
class _Labels:
    key: str  # the array's name in --data
    y: np.ndarray  # the finite rows judged
    given: int  # examples in the array
    dropped: int  # rows left out for NaN/Inf
    flat: np.ndarray
    values: np.ndarray  # distinct values, sorted
    integral: bool
    binary: bool

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def lo(self) -> float:
        return float(self.values[0])

    @property
    def hi(self) -> float:
        return float(self.values[-1])


def check(facts):
    raw = facts.data
    if raw is None:
        raise Skip("needs --data: the labels are judged only when they are given")
    if facts.spec.format == "savedmodel":
        raise Skip("a SavedModel keeps no loss to hold the labels against; kerascheck only runs its serving "
                   "signature")
    if not raw.ys and not raw.positional_y:
        raise Skip("needs --data with labels (y, or y_<output name> for several outputs): the data holds inputs only")
    outputs = _outputs(facts)
    findings, judged = [], 0
    for out in outputs:
        key, y = _find_labels(raw, out, len(outputs))
        labels = _read(key, y) if y is not None else None
        if labels is None:
            continue
        judged += 1
        findings.extend(_judge(out, labels))
    io = facts.info.io if facts.info is not None else None
    if not outputs:
        if io is not None and not io.callable:
            raise Skip("the labels have nothing to be compared with: the model has no call(), so no outputs; its "
                       "own train_step takes the labels")
        raise Skip("the labels have nothing to be compared with: the file names no output layers and the model "
                   "was not run (--static, or it could not be loaded)")
    if not judged and getattr(io, "fit_label_names", None):
        raise Skip(f"the labels ({', '.join('y_' + n for n in io.fit_label_names)}) are what the model's own "
                   "compute_loss reads, not one array per output, so they cannot be held against the outputs")
    if not judged:
        given = ", ".join(sorted(raw.ys)) or f"{len(raw.positional_y)} positional label arrays"
        wanted = ", ".join(f"y_{o.name}" for o in outputs) if len(outputs) > 1 else "y"
        raise Skip(f"needs --data with numeric labels for the model's outputs ({wanted}); the data has {given}")
    return findings


# ------------------------------------------------------------------ outputs and labels


def _outputs(facts) -> list:
    spec, info = facts.spec, facts.info
    ports = list(info.io.outputs) if info is not None else []
    meanings = list(info.meanings) if info is not None else []
    losses = spec.compile.losses if spec.compile is not None else ()
    graph = graph_of(spec)
    names = [q.split("/")[-1] for q in spec.outputs]
    outs = []
    for i, qualname in enumerate(spec.outputs):
        j = _port_index(ports, names, i)
        activation, units, where = graph.output_activation(qualname)
        layer = spec.layer(where)
        cls = layer.class_name.split(">")[-1] if layer is not None else None
        act, measured = _behaviour(layer, activation, meanings[j] if j is not None and j < len(meanings) else None)
        shape = tuple(ports[j].shape) if j is not None else None
        if shape:
            units = shape[-1] if shape[-1] is not None else units
        loss = losses[i] if i < len(losses) else None
        outs.append(_Output(names[i], qualname, where, cls, layer is not None and _builtin(layer), activation, act,
                            measured, _reach_of(layer, act, measured), units, shape, loss, j if j is not None else i,
                            len(spec.outputs) > 1, ports[j].name if j is not None else None))
    if not spec.outputs:  # a model whose file names no output layers: what running it showed
        for j, port in enumerate(ports):
            act = MEASURED.get(meanings[j]) if j < len(meanings) else None
            loss = losses[j] if j < len(losses) else None
            shape = tuple(port.shape)
            measured = meanings[j] if act else None
            outs.append(_Output(port.name, None, None, None, False, None, act, measured,
                                _reach_of(None, act, measured), shape[-1] if shape else 1, shape, loss, j,
                                len(ports) > 1))
    return outs


def _port_index(ports, names, i) -> int | None:
    """The loaded model's output that is the spec's output i (Keras orders dict outputs by key)."""
    if not ports:
        return None
    if len(ports) == 1 and len(names) == 1:
        return 0
    for j, port in enumerate(ports):
        if port.name == names[i]:
            return j
    return i if len(ports) == len(names) else None


def _builtin(layer) -> bool:
    cls = layer.class_name
    module = layer.module or ""
    return ">" not in cls and cls in BUILTIN_LAYERS and ">" not in (layer.registered_name or "") and (
        not module or module.startswith(("keras", "tf_keras", "tensorflow")))


def _behaviour(layer, activation, meaning) -> tuple:
    """(what the output behaves like, the measured meaning when that is where it comes from)."""
    if layer is not None and _builtin(layer):
        cls = layer.class_name
        has_activation = cls == "Activation" or cls in ACTIVATION_LAYERS or "activation" in layer.config
        raw = layer.config.get("activation")
        custom_fn = isinstance(raw, dict) and (">" in str(raw.get("config")) or ">" in str(raw.get("registered_name"))
                                               or not str(raw.get("module") or "keras").startswith("keras"))
        if has_activation and activation in KERAS_ACTIVATIONS and not custom_fn:
            return activation, None
    # A custom layer or activation (or a layer such as Add or Lambda that names no activation):
    # only what running the model showed counts.
    if meaning in MEASURED:
        return MEASURED[meaning], meaning
    return None, None


def _reach_of(layer, act, measured) -> tuple:
    """The values the output can take: the activation's range, with the layer's own settings."""
    if act is None or measured:
        return (0.0, 1.0) if act in ("softmax", "sigmoid") else (-INF, INF)
    lo, hi = REACH.get(act, (-INF, INF))
    cls = layer.class_name if layer is not None else None
    config = layer.config if layer is not None else {}

    def number(key, default):
        value = config.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    if cls == "ReLU":  # keras.layers.ReLU(max_value, negative_slope, threshold)
        if number("negative_slope", 0.0) > 0:
            return -INF, INF
        return min(0.0, number("threshold", 0.0)), number("max_value", INF)
    if cls == "ELU":
        return -number("alpha", 1.0), INF
    return lo, hi


def _find_labels(raw, out: _Output, count: int):
    keys = (["y"] if count == 1 else []) + [f"y_{out.name}", f"y_{out.port}", f"y_{out.index}"]
    for key in keys:
        if key in raw.ys:
            return key, raw.ys[key]
    if count == 1 and len(raw.ys) == 1:
        key = next(iter(raw.ys))
        return key, raw.ys[key]
    if raw.positional_y and len(raw.positional_y) == count:
        return f"y[{out.index}]", raw.positional_y[out.index]
    return None, None


def _read(key: str, y) -> _Labels | None:
    y = np.asarray(y)
    if y.dtype.kind == "b":
        y = y.astype(np.int8)
    if y.dtype.kind not in "iuf" or y.ndim == 0 or len(y) == 0:
        return None
    given = len(y)
    per_row = max(1, int(np.prod(y.shape[1:], dtype=np.int64)))
    y = y[:max(1, MAX_VALUES // per_row)]
    dropped = 0
    if y.dtype.kind == "f":
        finite = np.isfinite(y.reshape(len(y), -1)).all(axis=1)
        dropped = int(len(y) - finite.sum())
        y = y[finite]
        if len(y) == 0:
            return None
    flat = y.reshape(-1).astype(np.float64)
    values = np.unique(flat)
    return _Labels(key, y, given, dropped, flat, values, bool(np.all(values == np.round(values))),
                   bool(np.isin(values, (0.0, 1.0)).all()))


def _layout(out: _Output, labels: _Labels) -> tuple:
    """("flat", 1): one value per example (per step); ("units", k): k values against the output's units;
    ("rank", None): shapes that cannot line up; (None, None): unknown without the loaded model."""
    shape, got = out.shape, labels.y.shape[1:]
    if shape is not None:
        shape = shape or (1,)
        if len(got) == len(shape):
            return ("flat", 1) if got[-1] == 1 else ("units", got[-1])
        if len(got) == len(shape) - 1 or (len(got) == len(shape) + 1 and got[-1] == 1):
            return "flat", 1
        return "rank", None
    if got in ((), (1,)):
        return "flat", 1
    if len(got) == 1 and out.units and got[0] == out.units:
        return "units", got[0]
    return None, None


def _rows(labels: _Labels, k: int) -> np.ndarray:
    return labels.y.reshape(-1, k).astype(np.float64)


# -------------------------------------------------------------------------- judging


def _judge(out: _Output, labels: _Labels):
    layout, k = _layout(out, labels)
    if labels.n >= 2 and bool(np.all(labels.y == labels.y[0])):
        yield _constant(out, labels)
    loss = out.loss_name
    for judge in (_shape, _pairing, _undefined, _reach):
        finding = judge(out, labels, layout, k, loss)
        if finding is not None:
            yield finding
            return
    if loss in REGRESSION:
        finding = _classes_for_regression(out, labels, layout, k, loss)
        if finding is not None:
            yield finding


def _shape(out, labels, layout, k, loss):
    """Labels that only line up with the output by broadcasting, or not at all."""
    if loss is None or not (loss in BINARY | CATEGORICAL | SPARSE | DIRECT):
        return None
    units, shape_text = out.units, _shape_text(labels)
    if loss in SPARSE:
        if layout == "units" and k > 1:
            rows = _rows(labels, k)
            if labels.binary and bool(np.all(rows.sum(axis=1) == 1)):
                return _finding(out, labels, "onehot-sparse", "error",
                                f"{_who(out)} is trained with sparse_categorical_crossentropy, which takes one class "
                                f"id per example, but '{labels.key}' holds one-hot rows ({shape_text}): fit() fails "
                                "with a shape error.",
                                "Keep the one-hot rows and use the categorical loss: "
                                f"{_compile(out, 'categorical_crossentropy')} "
                                "(or pass class ids: y = y.argmax(axis=-1)).",
                                rewires=True, fix_activation=out.act, fix_loss="categorical_crossentropy")
            return _finding(out, labels, "shape", "error",
                            f"{_who(out)} is trained with sparse_categorical_crossentropy, which takes one class id "
                            f"per example, but '{labels.key}' holds {k} values per example ({shape_text}): fit() "
                            "fails with a shape error.",
                            "Pass one integer class id per example, shape (n,) or (n, 1), or use "
                            f"{_compile(out, 'categorical_crossentropy')} for rows of class probabilities.")
        if layout == "rank":
            return _rank_finding(out, labels, loss)
        return None
    if layout == "flat" and units and units > 1:
        ids = labels.integral and labels.lo >= 0 and len(labels.values) <= max(units, MAX_CLASSES)
        classes = max(units, int(labels.hi) + 1) if ids else units
        layer = f"{_layer(out, classes, 'softmax')} and " if classes != units or out.act not in ("softmax", None) \
            else ""
        if loss in CATEGORICAL and ids:
            return _finding(out, labels, "ids-categorical", "error",
                            f"{_who(out)} is trained with {loss}, which wants one-hot rows of {units} values, but "
                            f"'{labels.key}' holds integer class ids ({shape_text}; {_values(labels)}): fit() fails "
                            "with a shape error.",
                            f"Keep the ids and use the sparse loss: {layer}"
                            f"{_compile(out, 'sparse_categorical_crossentropy')} (or one-hot the labels: "
                            f"y = keras.utils.to_categorical(y, {classes})).",
                            rewires=True, fix_activation="softmax", fix_loss="sparse_categorical_crossentropy")
        how = ("fit() fails with a shape error" if loss in BINARY | CATEGORICAL else
               f"Keras broadcasts the column across all {units} units, so every unit learns the same target")
        if ids:
            fix = f"These are class ids: {layer}{_compile(out, 'sparse_categorical_crossentropy')}."
            fix_act, fix_loss = "softmax", "sparse_categorical_crossentropy"
        else:
            fix = f"Give the output one unit per label column: {_layer(out, 1, _keep(out, units=1))}."
            fix_act = fix_loss = None
        return _finding(out, labels, "broadcast", "error",
                        f"{_who(out)} has {units} units but '{labels.key}' gives one label per example "
                        f"({shape_text}; {_values(labels)}): {how}.",
                        fix, rewires=True, fix_activation=fix_act, fix_loss=fix_loss)
    if layout == "units" and out.shape is not None and units is not None and k != units:
        rows = _rows(labels, k)
        onehot = labels.binary and bool(np.all(rows.sum(axis=1) == 1))
        act = "softmax" if onehot else "sigmoid" if labels.binary else _keep(out, units=k)
        if units == 1:
            how = ("fit() fails with a shape error" if loss in BINARY | CATEGORICAL else
                   f"Keras broadcasts the single unit against all {k} columns, so it can only learn their mean")
            if onehot and k == 2 and loss in BINARY:
                fix = "For two exclusive classes keep the single unit and pass the second column: y = y[:, 1]."
            else:
                fix = f"Give the output one unit per label column: {_layer(out, k, act)}."
            return _finding(out, labels, "broadcast", "error",
                            f"{_who(out)} has 1 unit but '{labels.key}' gives {k} values per example "
                            f"({shape_text}): {how}.", fix, rewires=True)
        return _finding(out, labels, "shape", "error",
                        f"{_who(out)} has {units} units but '{labels.key}' gives {k} values per example "
                        f"({shape_text}): fit() fails with a shape error.",
                        f"Make the units match the label columns: {_layer(out, k, act)}, or give "
                        f"'{labels.key}' {units} columns.", rewires=True)
    if layout == "rank":
        return _rank_finding(out, labels, loss)
    return None


def _rank_finding(out, labels, loss):
    dims = tuple(out.shape or ())
    want = "(n" + "".join(f", {d if d is not None else '?'}" for d in (dims[:-1] if loss in SPARSE else dims)) + ")"
    return _finding(out, labels, "shape", "error",
                    f"{_who(out)} outputs shape {_output_shape(out)} but '{labels.key}' has {_shape_text(labels)}: "
                    f"with {loss} the labels must be shaped {want}, so fit() fails or broadcasts.",
                    f"Reshape the labels to {want}.")


def _pairing(out, labels, layout, k, loss):
    """Labels that show which side of the activation/loss pair is wrong, and labels the loss cannot take."""
    act = out.act
    if loss in CATEGORICAL and layout == "flat" and labels.integral and (out.units or 1) == 1 and labels.hi >= 1:
        classes = int(labels.hi) + 1
        return _finding(out, labels, "ids-categorical", "error",
                        f"{_who(out)} is trained with {loss}, which wants one-hot rows with one unit per class, "
                        f"but '{labels.key}' holds integer class ids ({_shape_text(labels)}; {_values(labels)}) "
                        "and the output has 1 unit.",
                        f"One unit per class and the sparse loss: {_layer(out, classes, 'softmax')} and "
                        f"{_compile(out, 'sparse_categorical_crossentropy')}.",
                        rewires=True, fix_activation="softmax", fix_loss="sparse_categorical_crossentropy")
    if act == "softmax" and out.units == 1 and not out.measured and loss not in SPARSE and \
            not np.all(labels.flat == 1):
        wrong = int(np.count_nonzero(labels.flat != 1))
        if labels.binary:
            fix = (f"For a yes/no output use one sigmoid unit: {_layer(out, 1, 'sigmoid')} and "
                   f"{_compile(out, 'binary_crossentropy')}.")
            fix_act, fix_loss = "sigmoid", "binary_crossentropy"
        elif labels.integral and labels.lo >= 0:
            fix = (f"One unit per class: {_layer(out, int(labels.hi) + 1, 'softmax')} and "
                   f"{_compile(out, 'sparse_categorical_crossentropy')}.")
            fix_act, fix_loss = "softmax", "sparse_categorical_crossentropy"
        else:
            fix = f"For real-valued targets use {_layer(out, 1, None)} and {_compile(out, 'mean_squared_error')}."
            fix_act, fix_loss = "linear", "mean_squared_error"
        return _finding(out, labels, "softmax-single-unit", "error",
                        f"{_who(out)} is a softmax over a single unit, which outputs 1.0 for every input, but "
                        f"{_count(wrong, labels.flat.size, 'label')} in '{labels.key}' are not 1 ({_values(labels)}).",
                        fix, rewires=True, fix_activation=fix_act, fix_loss=fix_loss,
                        unreachable=wrong, unreachable_share=_share(wrong, labels.flat.size))
    if loss is None:
        return None
    rows = _rows(labels, k) if layout == "units" and k > 1 else None
    sums = rows.sum(axis=1) if rows is not None else None
    onehot = rows is not None and labels.binary and bool(np.all(sums == 1))
    multihot = rows is not None and labels.binary and not onehot
    # A categorical loss turns any output into one distribution (softmax of logits, or outputs over their sum).
    if multihot and loss not in SPARSE and (act == "softmax" or loss in CATEGORICAL):
        several = int(np.count_nonzero(sums != 1))
        how = (f"{_who(out)} applies softmax over {k} units, whose values sum to 1," if act == "softmax" else
               f"{_who(out)} is trained with {loss}, which reads the {k} outputs as one distribution summing to 1,")
        return _finding(out, labels, "multihot-softmax", "error",
                        f"{how} but {_count(several, len(rows), 'label row')} in '{labels.key}' do not hold exactly "
                        f"one 1 (row sums {_fmt(sums.min())} to {_fmt(sums.max())}): a distribution cannot give "
                        "several labels at once, so those rows are out of reach.",
                        f"Score each label independently: {_layer(out, k, 'sigmoid')} and "
                        f"{_compile(out, 'binary_crossentropy')}.",
                        rewires=True, fix_activation="sigmoid", fix_loss="binary_crossentropy",
                        row_sums=[_num(sums.min()), _num(sums.max())], unreachable=several,
                        unreachable_share=_share(several, len(rows)))
    if loss in BINARY:
        outside = int(np.count_nonzero((labels.flat < 0) | (labels.flat > 1)))
        if outside:
            return _bce_outside(out, labels, loss, outside)
        if onehot and len(rows) >= MIN_ROWS:
            if act == "softmax":
                return _finding(out, labels, "onehot-binary", "warning",
                                f"{_who(out)} applies softmax over {k} units, but {loss} scores each unit as an "
                                f"independent yes/no; every one of the {len(rows)} label rows in '{labels.key}' is "
                                "one-hot (row sums all 1), so the classes are exclusive and the loss is the wrong "
                                "one for them.",
                                "Keep the softmax and use the categorical loss: "
                                f"{_compile(out, 'categorical_crossentropy')}.",
                                rewires=True, fix_activation="softmax", fix_loss="categorical_crossentropy",
                                row_sums=[1, 1])
            if act in ("sigmoid", "linear") and (act == "sigmoid" or out.logits):
                return _onehot_sigmoid(out, labels, loss, k, len(rows))
    if loss in CATEGORICAL:
        if labels.lo < 0:
            negative = int(np.count_nonzero(labels.flat < 0))
            return _finding(out, labels, "categorical-range", "error",
                            f"{_who(out)} is trained with {loss}, which wants label rows of class probabilities, but "
                            f"{_count(negative, labels.flat.size, 'label')} in '{labels.key}' are negative "
                            f"(min {_fmt(labels.lo)}): the loss is unbounded below on them.",
                            "Pass one-hot rows (y = keras.utils.to_categorical(ids, classes)) or class ids with "
                            f"{_compile(out, 'sparse_categorical_crossentropy')}.")
        if onehot and act == "sigmoid" and len(rows) >= MIN_ROWS:
            return _onehot_sigmoid(out, labels, loss, k, len(rows))
        if rows is not None and not labels.binary and not np.allclose(sums, 1.0, atol=1e-3):
            off = int(np.count_nonzero(~np.isclose(sums, 1.0, atol=1e-3)))
            return _finding(out, labels, "row-sums", "warning",
                            f"{_who(out)} is trained with {loss}, which reads each label row as a distribution over "
                            f"the {k} classes, but {_count(off, len(rows), 'row')} of '{labels.key}' do not sum to 1 "
                            f"(row sums {_fmt(sums.min())} to {_fmt(sums.max())}): the loss weighs those examples by "
                            "their sum.",
                            "Normalise the rows: y = y / y.sum(axis=-1, keepdims=True).",
                            row_sums=[_num(sums.min()), _num(sums.max())])
    if loss in SPARSE and layout == "flat":
        if not labels.integral:
            fractional = int(np.count_nonzero(labels.flat != np.round(labels.flat)))
            fix = (f"For probabilities of one yes/no use {_layer(out, 1, 'sigmoid')} and "
                   f"{_compile(out, 'binary_crossentropy')}" if labels.lo >= 0 and labels.hi <= 1 else
                   f"For real-valued targets use {_layer(out, 1, None)} and {_compile(out, 'mean_squared_error')}")
            return _finding(out, labels, "sparse-fractional", "error",
                            f"{_who(out)} is trained with sparse_categorical_crossentropy, which takes whole class "
                            f"ids, but {_count(fractional, labels.flat.size, 'label')} in '{labels.key}' are "
                            f"fractional ({_values(labels)}): they are cut to integers.",
                            f"{fix}; for classes pass ids: y = y.astype('int64').")
        units = out.units
        if units and (labels.lo < 0 or labels.hi >= units):
            bad = int(np.count_nonzero((labels.flat < 0) | (labels.flat >= units)))
            shift = labels.lo >= 1 and labels.hi == units
            if shift:
                fix = f"The ids start at 1: y = y - 1 makes them 0..{units - 1}."
            else:
                fix = f"One unit per class: {_layer(out, int(labels.hi) + 1, _keep(out, 'softmax'))}."
            return _finding(out, labels, "ids-out-of-range", "error",
                            f"{_who(out)} has {units} units, so class ids 0 to {units - 1}, but "
                            f"{_count(bad, labels.flat.size, 'label')} in '{labels.key}' are outside that "
                            f"({_values(labels)}): fit() fails with 'Received a label value ... outside the valid "
                            "range' on CPU and gives NaN losses on GPU.", fix, rewires=not shift,
                            unreachable=bad, unreachable_share=_share(bad, labels.flat.size))
    return None


def _onehot_sigmoid(out, labels, loss, k, n_rows):
    how = "independent sigmoids" if out.act == "sigmoid" else "logits that the loss reads as independent sigmoids"
    layer = _layer(out, k, None if out.logits and out.act == "linear" else "softmax")
    compile_line = _compile(out, "categorical_crossentropy", out.logits and out.act == "linear")
    return _finding(out, labels, "onehot-sigmoid", "warning",
                    f"{_who(out)} scores {k} classes with {how} and {loss}, but every one of the {n_rows} label rows "
                    f"in '{labels.key}' is one-hot (row sums all 1): the classes are exclusive, and independent "
                    "sigmoids neither make them compete nor give probabilities that sum to 1.",
                    f"Make the classes compete: {layer} and {compile_line}.",
                    rewires=True, fix_activation="softmax", fix_loss="categorical_crossentropy", row_sums=[1, 1])


def _bce_outside(out, labels, loss, outside):
    total = labels.flat.size
    if set(labels.values.tolist()) <= {-1.0, 1.0}:
        fix = "Map the labels to 0/1: y = (y + 1) / 2 (or train with loss='hinge', which takes -1/+1)."
        fix_act = fix_loss = None
    elif labels.integral and labels.lo == 0 and 2 < len(labels.values) == int(labels.hi) + 1 <= MAX_CLASSES:
        classes = int(labels.hi) + 1
        fix = (f"These are class ids: {_layer(out, classes, 'softmax')} and "
               f"{_compile(out, 'sparse_categorical_crossentropy')}.")
        fix_act, fix_loss = "softmax", "sparse_categorical_crossentropy"
    else:
        width = _fmt(labels.hi - labels.lo)
        scaled = f"y / {width}" if labels.lo == 0 else f"(y {_minus(labels.lo)}) / {width}"
        fix = (f"Scale the labels into [0, 1] (y = {scaled}), or fit the values with "
               f"{_layer(out, out.units or 1, None)} and {_compile(out, 'mean_squared_error')}.")
        fix_act, fix_loss = None, None
    return _finding(out, labels, "binary-range", "error",
                    f"{loss} wants labels in [0, 1] for {_who(out, lower=True)}, but "
                    f"{_count(outside, total, 'label')} in '{labels.key}' are outside it ({_values(labels)}): the "
                    "loss is unbounded below on them, so training drives the output to its limits instead of "
                    "fitting.", fix, rewires=fix_loss is not None, fix_activation=fix_act, fix_loss=fix_loss,
                    unreachable=outside, unreachable_share=_share(outside, total))


def _undefined(out, labels, layout, k, loss):
    """Losses that are not defined on the labels (Keras clips or divides by epsilon instead)."""
    flat, total = labels.flat, labels.flat.size
    if loss == "mean_absolute_percentage_error":
        zeros = int(np.count_nonzero(flat == 0))
        if zeros:
            classes = _class_like(labels, layout, k)
            extra = f" The labels are {classes}, which want a crossentropy." if classes else ""
            fix = (f"{_class_fix(out, labels, layout, k)}" if classes else
                   f"Use an error that does not divide by the target: {_compile(out, 'mean_absolute_error')}.")
            return _finding(out, labels, "mape-zero", "error",
                            f"mean_absolute_percentage_error divides by the target, but "
                            f"{_count(zeros, total, 'target')} in '{labels.key}' are 0: Keras divides by 1e-7 there, "
                            "so each of those examples can weigh ten million times more than the rest." + extra, fix,
                            zero_targets=zeros)
    if loss in ("poisson", "kl_divergence", "mean_squared_logarithmic_error") and labels.lo < 0:
        negative = int(np.count_nonzero(flat < 0))
        if loss == "poisson":
            return _finding(out, labels, "poisson-negative", "error",
                            f"poisson needs counts (targets >= 0), but {_count(negative, total, 'target')} in "
                            f"'{labels.key}' are negative (min {_fmt(labels.lo)}): y_pred - y * log(y_pred) is "
                            "unbounded below on them.",
                            f"For signed targets use {_layer(out, out.units or 1, None)} and "
                            f"{_compile(out, 'mean_squared_error')}.", negative_targets=negative)
        if loss == "mean_squared_logarithmic_error":
            below = int(np.count_nonzero(flat <= -1))
            return _finding(out, labels, "msle-negative", "error" if below else "warning",
                            "mean_squared_logarithmic_error compares log(1 + y), "
                            + (f"undefined for targets <= -1, and {_count(below, total, 'target')} in '{labels.key}' "
                               f"are at or below -1 (min {_fmt(labels.lo)}); " if below else
                               f"and {_count(negative, total, 'target')} in '{labels.key}' are negative (min "
                               f"{_fmt(labels.lo)}); ")
                            + "Keras reads every negative target as 0, so the loss trains on other targets.",
                            f"For signed targets use {_compile(out, 'mean_squared_error')} (or 'huber').",
                            negative_targets=negative, targets_at_most_minus_one=below)
    if loss == "kl_divergence" and (labels.lo < 0 or labels.hi > 1):
        outside = int(np.count_nonzero((flat < 0) | (flat > 1)))
        return _finding(out, labels, "kl-range", "error",
                        f"kl_divergence compares probability distributions, but {_count(outside, total, 'target')} "
                        f"in '{labels.key}' lie outside [0, 1] (targets span {_fmt(labels.lo)} to {_fmt(labels.hi)}): "
                        "Keras clips them into [1e-7, 1], so the loss trains on other targets than these.",
                        "Give distributions (y = y / y.sum(axis=-1, keepdims=True) for non-negative rows) or use "
                        f"{_compile(out, 'mean_squared_error')}.",
                        unreachable=outside, unreachable_share=_share(outside, total))
    return None


def _reach(out, labels, layout, k, loss):
    """Targets the output activation cannot produce, under a loss that fits the output to them."""
    if loss not in DIRECT or out.act is None:
        return None
    lo, hi = out.reach
    if lo == -INF and hi == INF:
        return None
    flat, total = labels.flat, labels.flat.size
    outside = int(np.count_nonzero((flat < lo - 1e-6) | (flat > hi + 1e-6)))
    if not outside:
        return None
    share = outside / total
    severity = "error" if share >= ERROR_SHARE and not out.measured else "warning"
    span = f"{'[' + _fmt(lo) if lo > -INF else '(-inf'}, {_fmt(hi) + ']' if hi < INF else 'inf)'}"
    if hi < INF and lo > -INF:
        how = f"the {out.act if not out.measured else 'output'} saturates as it tries and its gradients vanish"
    else:
        how = f"the output is pushed against its limit of {_fmt(lo if lo > -INF else hi)} there"
    linear = (f"make '{out.layer or out.name}' end without an activation (a linear output)" if out.measured else
              _layer(out, out.units or 1, None))
    fix = f"Let the output reach the targets: {linear}, with the targets standardised: y = (y - y.mean()) / y.std()"
    width = labels.hi - labels.lo
    if hi < INF and lo > -INF and width > 0 and (lo, hi) in ((0, 1), (-1, 1)):
        shifted = f"y / {_fmt(width)}" if labels.lo == 0 else f"(y {_minus(labels.lo)}) / {_fmt(width)}"
        scale = shifted if lo == 0 else f"2 * {shifted} - 1"
        keep = out.act if not out.measured else "output"
        fix += f"; or keep the {keep} and scale the targets into {span}: y = {scale}"
    what = f"{_who(out)} only reaches" if out.measured else f"{_who(out)} is {out.act}, which only reaches"
    return _finding(out, labels, "out-of-reach", severity,
                    f"{what} {span}, but {_count(outside, total, 'target')} in '{labels.key}' lie outside it "
                    f"(targets span {_fmt(labels.lo)} to {_fmt(labels.hi)}): {loss} can never bring the output to "
                    f"them, and {how}.", fix + ".",
                    reachable=[lo if lo > -INF else None, hi if hi < INF else None],
                    unreachable=outside, unreachable_share=_share(outside, total))


def _classes_for_regression(out, labels, layout, k, loss):
    what = _class_like(labels, layout, k)
    if not what or (loss == "poisson" and layout == "flat"):  # Poisson targets are counts
        return None
    why = ("it trains slowly on them and gives scores that are not probabilities" if layout == "units" or
           len(labels.values) == 2 else
           f"it treats the ids as points on a line ({int(labels.hi)} lies closer to {int(labels.hi) - 1} than to 0) "
           "and gives scores that are not probabilities")
    act, fix_loss = _class_target(labels, layout, k)
    return _finding(out, labels, "classes-regression", "warning",
                    f"{_who(out)} is trained with {loss}, a regression loss, on {what} in '{labels.key}': {why}.",
                    _class_fix(out, labels, layout, k), rewires=True, fix_activation=act, fix_loss=fix_loss)


def _class_like(labels, layout, k) -> str | None:
    """How the labels read as classes ("one-hot class rows", ...), or None."""
    if layout == "units" and k > 1 and labels.binary and labels.n >= MIN_ROWS:
        sums = _rows(labels, k).sum(axis=1)
        return f"one-hot class rows ({k} columns, every row summing to 1)" if np.all(sums == 1) else \
            f"multi-hot label rows ({k} columns of 0/1, row sums {_fmt(sums.min())} to {_fmt(sums.max())})"
    if layout == "flat" and labels.integral and labels.lo == 0 and len(labels.values) >= 2 and \
            len(labels.values) == int(labels.hi) + 1 <= MAX_CLASSES:
        if len(labels.values) == 2:
            return "labels that are only 0 and 1"
        return f"labels that are class ids 0 to {int(labels.hi)} ({len(labels.values)} distinct whole numbers)"
    return None


def _class_target(labels, layout, k) -> tuple:
    if layout == "units":
        sums = _rows(labels, k).sum(axis=1)
        return ("softmax", "categorical_crossentropy") if np.all(sums == 1) else ("sigmoid", "binary_crossentropy")
    if len(labels.values) == 2:
        return "sigmoid", "binary_crossentropy"
    return "softmax", "sparse_categorical_crossentropy"


def _class_fix(out, labels, layout, k) -> str:
    act, loss = _class_target(labels, layout, k)
    units = k if layout == "units" else (1 if act == "sigmoid" else int(labels.hi) + 1)
    return f"Train the classes with a crossentropy: {_layer(out, units, act)} and {_compile(out, loss)}."


def _constant(out, labels):
    row = labels.y[0]
    value = _fmt(float(row)) if np.ndim(row) == 0 or np.size(row) == 1 else \
        "[" + ", ".join(_fmt(v) for v in np.ravel(row)[:8]) + (", ..." if np.size(row) > 8 else "") + "]"
    return _finding(out, labels, "constant", "error",
                    f"Every one of the {labels.n} examples in '{labels.key}' has the same label ({value}): "
                    f"{_who(out, lower=True)} can only learn to output that constant, whatever the input.",
                    "Give labels that vary: check the step that builds y (np.unique(y, axis=0) must list more than "
                    "one), and shuffle before sampling: idx = np.random.permutation(len(x)); x, y = x[idx], y[idx].",
                    constant=_num(float(np.ravel(row)[0])) if np.size(row) == 1 else [_num(v) for v in np.ravel(row)])


# ----------------------------------------------------------------------- wording


def _finding(out: _Output, labels: _Labels, kind: str, severity: str, message: str, fix: str, *,
             rewires: bool = False, fix_activation=None, fix_loss=None, **extra):
    if labels.dropped:
        message += (f" Rows holding NaN or Inf ({labels.dropped} of {labels.given}) were left out: nonfinite-data "
                    "reports them.")
    elif labels.n < labels.given:
        message += f" (Judged on the first {labels.n:,} of {labels.given:,} examples.)"
    evidence = {
        "kind": kind, "output": out.qualname or out.name, "activation": out.activation,
        "activation_layer": out.layer, "units": out.units,
        "loss": out.loss.name if out.loss is not None else None,
        "from_logits": out.loss.from_logits if out.loss is not None else None,
        "labels": labels.key, "label_shape": [labels.given] + [int(d) for d in labels.y.shape[1:]],
        "examples": labels.n, "label_min": _num(labels.lo), "label_max": _num(labels.hi),
        "distinct": int(len(labels.values)), "values": [_num(v) for v in labels.values[:10]],
        "nonfinite_rows_skipped": labels.dropped, "rewires": rewires,
    }
    if out.measured:
        evidence["measured_output"] = out.measured
    if fix_activation or fix_loss:
        evidence["fix_activation"], evidence["fix_loss"] = fix_activation, fix_loss
    evidence.update(extra)
    return RULE.finding(layer=out.layer or None, severity=severity, message=message, fix=fix, evidence=evidence)


def _who(out: _Output, lower: bool = False) -> str:
    text = f"Output '{out.name}'"
    if out.measured:
        text += f" (custom; it gave {out.measured} when kerascheck ran the model)"
    return text[0].lower() + text[1:] if lower else text


def _keep(out: _Output, default=None, units: int | None = None):
    """The activation a fix keeps: the output's own when Keras knows it (never a softmax over one unit)."""
    if out.act in (None, "linear") or out.measured or (out.act == "softmax" and units == 1):
        return default
    return out.act


def _layer(out: _Output, units: int, activation: str | None) -> str:
    name = f", name='{out.layer}'" if out.layer and "/" not in out.layer else ""
    act = f", activation='{activation}'" if activation else ""
    cls = out.layer_class
    plural = "s" if units != 1 else ""
    if cls is None or not out.builtin:
        where = f"'{out.layer}'" if out.layer else "the output"
        return (f"{where} with {units} output{plural}"
                + (f" followed by keras.layers.Activation('{activation}')" if activation else " and no activation"))
    if cls == "Activation" or cls in ACTIVATION_LAYERS:
        return (f"keras.layers.Activation('{activation}'{name}) over {units} unit{plural}" if activation else
                f"{units} unit{plural} without the activation layer '{out.layer}' (a linear output)")
    if cls == "Dense":
        return f"keras.layers.Dense({units}{act}{name})"
    return f"keras.layers.{cls}({units}, ...{act}{name})"


def _compile(out: _Output, loss: str, from_logits: bool = False) -> str:
    value = f"keras.losses.{''.join(p.capitalize() for p in loss.split('_'))}(from_logits=True)" if from_logits \
        else f"'{loss}'"
    if out.several:
        value = f"{{'{out.name}': {value}, ...}}"
    return f"model.compile(optimizer=..., loss={value})"


def _shape_text(labels: _Labels) -> str:
    return "shape (" + ", ".join(str(d) for d in (labels.given,) + labels.y.shape[1:]) + \
        ("," if labels.y.ndim == 1 else "") + ")"


def _output_shape(out: _Output) -> str:
    return "(n" + "".join(f", {d if d is not None else '?'}" for d in (out.shape or ())) + ")"


def _values(labels: _Labels) -> str:
    vals = labels.values
    if len(vals) <= 6:
        shown = [_fmt(v) for v in vals]
        return "the values are " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1])
    return f"{len(vals)} distinct values from {_fmt(vals[0])} to {_fmt(vals[-1])}"


def _count(part: int, total: int, noun: str) -> str:
    return f"{part:,} of {total:,} {noun}s ({_pct(part, total)})"


def _pct(part: int, total: int) -> str:
    p = 100.0 * part / total if total else 0.0
    return f"{p:.0f}%" if p >= 10 or p == 0 else f"{p:.2g}%"


def _share(part: int, total: int) -> float:
    return round(part / total, 4) if total else 0.0


def _minus(v) -> str:
    """"- v" written as a person would: y - 7, y + 60."""
    return f"+ {_fmt(-v)}" if v < 0 else f"- {_fmt(v)}"


def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else f"{v:.4g}"


def _num(v):
    v = float(v)
    return int(v) if v == int(v) and abs(v) < 1e15 else v
