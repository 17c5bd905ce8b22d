"""The examples the probes run on: the user's `--data`, or synthetic data shaped like the model's.

`read_arrays` reads a --data source without the model (the label rules read it in
the spec tier); `load_data` binds those arrays to the model's inputs and outputs.
Synthetic inputs respect what each input means: ids inside the vocabulary for inputs
that index an embedding or are cast to integers, pixels in 0..255 where the model
rescales them itself, standard normal values otherwise; synthetic labels fit the loss.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from kerascheck.errors import UsageError

SAMPLE_SIZE = 256
MAX_DATA_EXAMPLES = 4096
MIN_EXAMPLES = 10


@dataclass
class RawData:
    """What a --data source holds, before it is matched to a model."""

    source: str
    xs: dict  # "x", "x_<name>" or "x_<i>" -> array
    ys: dict  # "y", "y_<name>" or "y_<i>" -> array
    positional_x: list = field(default_factory=list)  # a function returned a list of inputs
    positional_y: list = field(default_factory=list)

    @property
    def n(self) -> int:
        arrays = list(self.xs.values()) + self.positional_x
        return len(arrays[0]) if arrays else 0


@dataclass
class Sample:
    x: list  # one array per model input
    y: list | None  # one array per model output (None where a loss takes no labels)
    synthetic: bool
    description: str
    synthetic_labels: bool = False

    def take(self, idx) -> tuple[list, list | None]:
        return [a[idx] for a in self.x], (None if self.y is None else [a[idx] for a in self.y])

    def __len__(self) -> int:
        return len(self.x[0])


def read_arrays(path: str) -> RawData:
    """--data FILE.npz (x, y, x_<input>, y_<output>), FILE.npy (inputs), or module:function."""
    if ":" in path and not path.endswith((".npz", ".npy")) and not path.startswith(("/", ".")):
        return _from_function(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data {path}: cannot read it as .npz or .npy ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return RawData(path, {"x": loaded}, {})
    arrays = {k: loaded[k] for k in loaded.files}
    unknown = [k for k in arrays if not (k in ("x", "y") or k.startswith(("x_", "y_")))]
    if unknown:
        raise UsageError(f"--data {path}: arrays must be named x, y, x_<input name> or y_<output name>; "
                         f"the file also has {', '.join(sorted(unknown)[:5])}")
    return RawData(path, {k: v for k, v in arrays.items() if k.startswith("x")},
                   {k: v for k, v in arrays.items() if k.startswith("y")})


def _from_function(target: str) -> RawData:
    """module:function returning arrays, (x, y), a dict, or a tf.data.Dataset (a bounded sample is taken)."""
    module_name, _, func_name = target.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        value = func()
    except Exception as exc:
        raise UsageError(f"--data {target}: calling it failed ({type(exc).__name__}: {exc})") from None
    if hasattr(value, "take") and hasattr(value, "element_spec"):  # a tf.data.Dataset
        import tensorflow as tf

        first_spec = tf.nest.flatten(value.element_spec)[0]
        if first_spec.shape.rank and first_spec.shape[0] is None:
            value = value.unbatch()  # batched: take single examples
        elements = list(value.take(MAX_DATA_EXAMPLES).as_numpy_iterator())
        if not elements:
            raise UsageError(f"--data {target}: the dataset is empty")
        stacked = tf.nest.map_structure(lambda *parts: np.stack(parts), *elements)
        value = tuple(stacked) if isinstance(stacked, (tuple, list)) and len(stacked) == 2 else stacked
    if isinstance(value, dict) and any(k.startswith(("x", "y")) for k in value):
        raw = RawData(target, {}, {})
        for k, v in value.items():
            (raw.ys if k.startswith("y") else raw.xs)[k] = np.asarray(v)
        return raw
    x, y = value if isinstance(value, tuple) and len(value) == 2 else (value, None)
    return from_xy(target, x, y)


def from_xy(source: str, x, y) -> RawData:
    """RawData from inputs and labels as fit() takes them: one array, a list, or a dict of each."""
    raw = RawData(source, {}, {})
    if isinstance(x, dict):
        raw.xs = {f"x_{k}": np.asarray(v) for k, v in x.items()}
    elif isinstance(x, (list, tuple)):
        raw.positional_x = [np.asarray(v) for v in x]
    else:
        raw.xs = {"x": np.asarray(x)}
    if isinstance(y, dict):
        raw.ys = {f"y_{k}": np.asarray(v) for k, v in y.items()}
    elif isinstance(y, (list, tuple)):
        raw.positional_y = [np.asarray(v) for v in y]
    elif y is not None:
        raw.ys = {"y": np.asarray(y)}
    return raw


def _bind(arrays: dict, positional: list, names: list, prefix: str, source: str, what: str,
          partial: bool = False) -> list | None:
    """Arrays in the order of `names`: by name, then by position; None when none are given. With
    `partial`, a name with no array gets None (labels for an output trained with no loss)."""
    if not arrays and not positional:
        return None
    holder = "file" if source.endswith((".npz", ".npy")) else "data"
    if positional:
        if len(positional) != len(names):
            raise UsageError(f"--data {source}: the model has {len(names)} {what}s but the data gives "
                             f"{len(positional)}")
        return list(positional)
    if len(names) == 1 and prefix in arrays:
        return [arrays[prefix]]
    out = []
    for i, name in enumerate(names):
        for key in (f"{prefix}_{name}", f"{prefix}_{i}"):
            if key in arrays:
                out.append(arrays[key])
                break
        else:
            if partial:
                out.append(None)
                continue
            want = ", ".join(f"{prefix}_{n}" for n in names)
            raise UsageError(f"--data {source}: the model has {len(names)} {what}s, so the {holder} needs arrays "
                             f"{want}; missing {prefix}_{name} (arrays {prefix}_0, {prefix}_1, ... by position "
                             "work too)")
    return out


def data_shapes(raw: RawData) -> dict:
    """{input name: (shape, dtype)} from the data alone, for a model that does not record its inputs."""
    xs = raw.positional_x or [raw.xs[k] for k in sorted(raw.xs)]
    names = [f"input_{i}" for i in range(len(xs))] if raw.positional_x else \
        [k[2:] if k.startswith("x_") else "input" for k in sorted(raw.xs)]
    return {name: (tuple(a.shape), "float32" if a.dtype.kind == "f" else str(a.dtype)) for name, a in zip(names, xs)}


def load_data(raw: RawData, io) -> Sample:
    """Bind --data to the model's inputs and outputs, checking shapes and types."""
    source = raw.source
    names = [p.name for p in io.inputs]
    xs = _bind(raw.xs, raw.positional_x, names, "x", source, "input")
    if xs is None:
        raise UsageError(f"--data {source}: holds no inputs (x)")
    n = len(xs[0])
    holder = "file" if source.endswith((".npz", ".npy")) else "data"
    for k, (port, x) in enumerate(zip(io.inputs, xs)):
        want = tuple(port.shape)
        x = xs[k] = fit_rank(x, want)
        if x.ndim != len(want) + 1 or any(w is not None and w != g for w, g in zip(want, x.shape[1:])):
            also = " (or without its last axis of 1, as fit() takes it)" if want and want[-1] == 1 else ""
            raise UsageError(f"--data {source}: input {port.name!r} expects shape (N, "
                             f"{', '.join('?' if w is None else str(w) for w in want)}){also} but the {holder} "
                             f"has {x.shape}")
        if len(x) != n:
            raise UsageError(f"--data {source}: inputs have different numbers of examples")
        if port.dtype == "string":
            if x.dtype.kind not in "USO":
                raise UsageError(f"--data {source}: input {port.name!r} takes strings but the {holder} holds "
                                 f"{x.dtype}")
            xs[k] = x.astype(object)
            continue
        want_int = "int" in port.dtype
        if x.dtype.kind not in "biuf" or (want_int and x.dtype.kind == "f" and not np.all(np.mod(x, 1) == 0)):
            raise UsageError(f"--data {source}: input {port.name!r} expects {port.dtype} values but the {holder} "
                             f"holds {x.dtype}")
    if io.outputs:
        ys = _bind(raw.ys, raw.positional_y, [p.name for p in io.outputs], "y", source, "output", partial=True)
    else:  # no call(), no outputs: its own train_step gets the labels as fit() hands them on
        ys = (raw.positional_y or [raw.ys[k] for k in sorted(raw.ys)])[:1] or None
    if ys is not None and io.outputs and all(y is None for y in ys):
        want = ", ".join(f"y_{p.name}" for p in io.outputs)
        raise UsageError(f"--data {source}: the model has {len(io.outputs)} outputs, so labels go in arrays {want} "
                         "(or y_0, y_1, ... by position); the data names none of them")
    for port, y in zip(io.outputs, ys or []):
        if y is None:
            continue  # an output fit() is given no labels for: fine where it has no loss (checked by the probes)
        if len(y) != n:
            raise UsageError(f"--data {source}: y{'' if len(io.outputs) == 1 else '_' + port.name} has {len(y)} "
                             f"examples but x has {n}")
        if y.dtype.kind not in "biuf":
            raise UsageError(f"--data {source}: labels for {port.name!r} hold {y.dtype}, not numbers")
    if n == 0:
        raise UsageError(f"--data {source}: holds no examples")
    keep = min(n, MAX_DATA_EXAMPLES)
    xs, ys = [x[:keep] for x in xs], None if ys is None else [None if y is None else y[:keep] for y in ys]
    what = f"{keep} examples from {source}"
    if n < MIN_EXAMPLES:
        # fit() trains on 4 examples (an XOR net); the probes repeat them rather than refuse them.
        reps = -(-MIN_EXAMPLES // n)
        xs = [np.concatenate([x] * reps) for x in xs]
        ys = None if ys is None else [None if y is None else np.concatenate([y] * reps) for y in ys]
        what = f"the {n} examples of {source}, repeated to {n * reps}"
    return Sample(xs, ys, False, what)


def fit_rank(x: np.ndarray, want: tuple) -> np.ndarray:
    """An input array at the rank the model declares, adjusted by one where the missing or extra axis
    is a last axis of 1, as Keras's Functional models adjust what fit() gives them."""
    if x.ndim == len(want) and want and want[-1] == 1:
        return x[..., None]
    if x.ndim == len(want) + 2 and x.shape[-1] == 1:
        return x[..., 0]
    return x


# ---------------------------------------------------------------------- synthetic


def synthesize_inputs(io, roles: list, rng: np.random.Generator, n: int) -> list:
    """Inputs shaped like the model's, each drawn as `roles` says (see kerascheck.tiers.probe.roles)."""
    xs = []
    for port, role in zip(io.inputs, roles):
        shape = io.shape(port, n)
        if port.dtype == "string":
            words = role.vocabulary or [chr(ord("a") + i) for i in range(10)]
            xs.append(np.asarray(rng.choice(np.asarray(words, dtype=object), size=shape), dtype=object))
            continue
        dtype = port.dtype if ("int" in port.dtype or "float" in port.dtype) else "float32"
        if role.vocabulary is not None:
            xs.append(rng.choice(np.asarray(role.vocabulary), size=shape).astype(dtype))
        elif role.ids is not None:
            xs.append(rng.integers(role.low, role.ids, size=shape).astype(dtype))
        elif role.pixels:
            xs.append(rng.uniform(0, 255, size=shape).astype(dtype))
        elif role.binary:
            xs.append(rng.integers(0, 2, size=shape).astype(dtype))
        elif role.span is not None:
            xs.append(rng.uniform(role.span[0], role.span[1], size=shape).astype(dtype))
        elif role.mean is not None:
            xs.append((role.mean + role.std * rng.standard_normal(shape)).astype(dtype))
        else:
            xs.append(rng.standard_normal(shape).astype(dtype))
    return xs


def synthesize_labels(io, setup, kinds: list, rng: np.random.Generator, n: int,
                      shapes: list | None = None) -> list | None:
    """Labels of the given kinds ("sparse", "onehot", "binary", "real"), one array per output.

    Shaped like the outputs the model gave on synthetic inputs (`shapes`), whose open
    dimensions (a sequence length) follow the inputs'."""
    if not setup.needs_labels:
        return None
    return [label_array(kind, tuple(shapes[i]) if shapes and i < len(shapes) else
                        tuple(d if d is not None else io.fill for d in port.shape), rng, n)
            for i, (port, kind) in enumerate(zip(io.outputs, kinds))]


def label_array(kind: str, out_shape: tuple, rng: np.random.Generator, n: int) -> np.ndarray:
    units = out_shape[-1] if out_shape else 1
    if kind == "sparse":
        return rng.integers(0, max(units, 2), size=(n,) + out_shape[:-1])
    if kind == "onehot":
        return np.eye(max(units, 1), dtype="float32")[rng.integers(0, max(units, 1), size=(n,) + out_shape[:-1])]
    if kind == "binary":
        return rng.integers(0, 2, size=(n,) + out_shape).astype("float32")
    return rng.standard_normal((n,) + out_shape).astype("float32")
