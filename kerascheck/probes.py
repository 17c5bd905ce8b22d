"""The `probe` tier: short, budgeted runs of the loaded model that rules read as evidence.

The engine builds one ProbeResults per model, once, however many probe rules are
selected (ruff builds its semantic model once; rules query it). Every run starts
from the weights as loaded: the model object is kerascheck's own copy, loaded from
the file, and the file itself is never written.
"""
from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field

import numpy as np

from kerascheck.modeltier import Options, TierUnavailable

SAMPLE_SIZE = 256
BATCH_SIZE = 32
LARGE_MODEL_PARAMS = 5_000_000
_BATCH = [BATCH_SIZE]  # set per model by run_probes
TRAIN_STEPS = 100
OVERFIT_EXAMPLES = 10
OVERFIT_STEPS = 300
SWEEP_TRIES = 8
EXPLOSION_FACTOR = 1e3  # loss this many times its start counts as divergence, NaN or not

CLASSIFICATION = {"sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
                  "categorical_focal_crossentropy", "binary_focal_crossentropy"}


@dataclass
class TrainRun:
    learning_rate: float
    steps_planned: int
    losses: list = field(default_factory=list)
    global_norms: list = field(default_factory=list)
    layer_norms: dict = field(default_factory=dict)  # layer -> gradient L2 norm per step
    kernel_norms: dict = field(default_factory=dict)  # layer -> gradient L2 norm of its kernels per step
    update_ratios: dict = field(default_factory=dict)  # layer -> ||kernel update|| / ||kernel|| per step
    diverged_at: int | None = None  # first step whose loss or weights were non-finite or exploded
    why: str | None = None  # "nan" or "explosion"
    cut: bool = False  # stopped by the time budget

    @property
    def steps_done(self) -> int:
        return len(self.losses)

    def to_evidence(self) -> dict:
        return {"learning_rate": self.learning_rate, "steps_planned": self.steps_planned,
                "steps_done": self.steps_done, "losses": [_f(v) for v in self.losses],
                "diverged_at": self.diverged_at, "cut_by_budget": self.cut}


@dataclass
class ProbeResults:
    device: str
    synthetic: bool
    data_description: str
    defaults: list  # what the probes had to assume (no saved optimizer or loss)
    loss_name: str
    task: str  # "classification" or "regression"
    train: TrainRun | None = None
    sweep: list = field(default_factory=list)  # [(learning rate, diverged_at or None)]
    stable_run: TrainRun | None = None
    nan_layer: dict | None = None
    overfit: dict | None = None
    batch: dict | None = None
    activations: dict | None = None  # None when no per-layer outputs could be observed
    layer_params: dict = field(default_factory=dict)  # layer -> trainable parameter count
    kernel_params: dict = field(default_factory=dict)  # layer -> parameters in its kernels
    layer_order: list = field(default_factory=list)  # weighted layers, input to output
    seconds: float = 0.0
    cut: list = field(default_factory=list)  # probes the budget shortened or skipped
    input_stats: list = field(default_factory=list)  # per model input, from --data only
    target_stats: dict | None = None  # from --data y only


def _f(v) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))


# ----------------------------------------------------------------- set-up


class Setup:
    """The loss and optimizer the probes use: the model's own where it was saved compiled."""

    def __init__(self, model, spec):
        import keras

        self.keras = keras
        self.defaults: list[str] = []
        loss_spec = spec.compile.losses[0] if spec.compile and spec.compile.losses else None
        if len(model.outputs) != 1:
            raise TierUnavailable("the probes support single-output models so far; this one has "
                                  f"{len(model.outputs)} outputs")
        if loss_spec is None:
            name = self._default_loss_name(model, spec)
            self.defaults.append(f"loss {name} (the file has no saved loss)")
            loss_spec_name, from_logits, cfg = name, False, {}
        else:
            loss_spec_name, from_logits, cfg = loss_spec.name, loss_spec.from_logits, dict(loss_spec.config)
        self.loss_name = loss_spec_name
        self.from_logits = from_logits
        self.loss_fn = self._make_loss(loss_spec_name, cfg)
        self.task = "classification" if loss_spec_name in CLASSIFICATION else "regression"
        opt = spec.compile.optimizer if spec.compile else None
        raw = _raw_optimizer_config(spec)
        if opt is None or raw is None:
            self.defaults.append("optimizer Adam(learning_rate=0.001) (the file has no saved optimizer)")
            self.opt_class, self.opt_config = keras.optimizers.Adam, {"learning_rate": 1e-3}
        else:
            self.opt_class = getattr(keras.optimizers, opt.class_name, None)
            if self.opt_class is None:
                raise TierUnavailable(f"optimizer {opt.class_name} is not a Keras optimizer kerascheck can rebuild")
            # Rebuilt from its config rather than restored: a compiled legacy .h5
            # optimizer can fail on its first step ("Unknown variable").
            accepted = set(inspect.signature(self.opt_class.__init__).parameters)
            self.opt_config = {k: v for k, v in dict(raw).items() if k in accepted and k != "name"}
        lr = self.opt_config.get("learning_rate", 1e-3)
        if isinstance(lr, dict):
            schedule = keras.optimizers.schedules.deserialize(lr)
            self.opt_config["learning_rate"] = schedule
            self.learning_rate = float(schedule(0))
        else:
            self.learning_rate = float(lr)

    def make_optimizer(self, learning_rate: float | None = None):
        cfg = dict(self.opt_config)
        if learning_rate is not None:
            cfg["learning_rate"] = float(learning_rate)
        return self.opt_class(**cfg)

    def _make_loss(self, name: str, cfg: dict):
        keras = self.keras
        class_name = "".join(p.capitalize() for p in name.split("_"))
        class_name = {"KlDivergence": "KLDivergence"}.get(class_name, class_name)
        cls = getattr(keras.losses, class_name, None)
        if cls is None:
            raise TierUnavailable(f"loss {name} is not a Keras loss kerascheck can rebuild")
        accepted = set(inspect.signature(cls.__init__).parameters)
        return cls(**{k: v for k, v in cfg.items() if k in accepted and k not in ("name", "reduction")})

    @staticmethod
    def _default_loss_name(model, spec) -> str:
        from kerascheck.topology import graph_of

        act, units, _ = graph_of(spec).output_activation(spec.outputs[0]) if spec.outputs else ("linear", None, "")
        if act == "softmax":
            return "sparse_categorical_crossentropy"
        if act == "sigmoid":
            return "binary_crossentropy"
        return "mean_squared_error"


def _raw_optimizer_config(spec):
    cfg = spec.config.get("compile_config") if spec.format == "keras" else None
    if isinstance(cfg, dict) and isinstance(cfg.get("optimizer"), dict):
        return cfg["optimizer"].get("config")
    if spec.compile and spec.compile.optimizer:
        return spec.compile.optimizer.config
    return None


# ------------------------------------------------------------------ data


@dataclass
class Sample:
    x: list  # one array per model input
    y: np.ndarray
    synthetic: bool
    description: str

    def take(self, idx) -> tuple[list, np.ndarray]:
        return [a[idx] for a in self.x], self.y[idx]

    def __len__(self) -> int:
        return len(self.y)


def synthesize(model, spec, setup: Setup, rng: np.random.Generator, n: int = SAMPLE_SIZE) -> Sample:
    xs = synthesize_inputs(model, spec, rng, n)
    out_shape = tuple(d if d is not None else 8 for d in model.outputs[0].shape[1:])
    units = out_shape[-1] if out_shape else 1
    name = setup.loss_name
    if name == "sparse_categorical_crossentropy":
        y = rng.integers(0, max(units, 2), size=(n,) + out_shape[:-1])
    elif name in ("categorical_crossentropy", "categorical_focal_crossentropy", "kl_divergence"):
        y = np.eye(units, dtype="float32")[rng.integers(0, units, size=(n,) + out_shape[:-1])]
    elif name in ("binary_crossentropy", "binary_focal_crossentropy"):
        y = rng.integers(0, 2, size=(n,) + out_shape).astype("float32")
    else:
        y = rng.standard_normal((n,) + out_shape).astype("float32")
    return Sample(xs, y, True, f"{n} synthetic examples shaped like the model's inputs, labels for {name}")


MAX_DATA_EXAMPLES = 4096


def synthesize_inputs(model, spec, rng: np.random.Generator, n: int) -> list:
    """Inputs shaped like the model's: token ids inside the embedding's vocabulary, pixels in
    0-255 where the model rescales them itself, standard normal values otherwise."""
    from kerascheck.topology import graph_of

    graph = graph_of(spec) if spec is not None else None
    xs = []
    for i, tensor in enumerate(model.inputs):
        shape = (n,) + tuple(d if d is not None else 8 for d in tensor.shape[1:])
        dtype = str(tensor.dtype)
        if "int" in dtype:
            vocab = (graph and _embedding_vocab(spec, graph, i)) or 10
            xs.append(rng.integers(0, vocab, size=shape).astype(dtype))
        elif graph and _rescaled_pixels(spec, graph, i):
            xs.append(rng.uniform(0, 255, size=shape).astype(dtype))
        else:
            xs.append(rng.standard_normal(shape).astype(dtype if "float" in dtype else "float32"))
    return xs


def _input_consumers(spec, graph, input_index):
    """The layers that model input number `input_index` feeds directly."""
    if input_index >= len(spec.inputs):
        return []
    start = spec.layer(spec.inputs[input_index].name)
    return [graph.by_qual[q] for q in graph.consumers(start.qualname)] if start else []


def _embedding_vocab(spec, graph, input_index):
    for layer in _input_consumers(spec, graph, input_index):
        if layer.class_name == "Embedding" and isinstance(layer.config.get("input_dim"), int):
            return layer.config["input_dim"]
    return None


def _rescaled_pixels(spec, graph, input_index):
    for layer in _input_consumers(spec, graph, input_index):
        scale = layer.config.get("scale")
        if layer.class_name == "Rescaling" and isinstance(scale, (int, float)) and abs(scale) < 0.1:
            return True
    return False


def load_data(path: str, model, spec) -> Sample:
    """--data FILE.npz (x, y or x_<input name>), FILE.npy (inputs), or module:function."""
    from kerascheck.errors import UsageError

    names = [t.name.split(":")[0] for t in model.inputs]
    spec_names = [i.name for i in spec.inputs] or names
    if ":" in path and not path.endswith((".npz", ".npy")) and not path.startswith(("/", ".")):
        arrays, y = _from_function(path, spec_names)
    else:
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--data {path}: cannot read it as .npz or .npy ({exc})") from None
        if isinstance(loaded, np.ndarray):
            arrays, y = {"x": loaded}, None
        else:
            arrays = {k: loaded[k] for k in loaded.files}
            y = arrays.pop("y", None)
    if "x" in arrays and len(model.inputs) == 1:
        xs = [arrays["x"]]
    else:
        try:
            xs = [arrays[f"x_{name}"] for name in spec_names]
        except KeyError as exc:
            want = ", ".join(f"x_{n}" for n in spec_names)
            raise UsageError(f"--data {path}: the model has {len(spec_names)} inputs, so the file needs arrays "
                             f"{want}; missing {exc.args[0]}") from None
    n = len(xs[0])
    for name, x, tensor in zip(spec_names, xs, model.inputs):
        want = tuple(tensor.shape[1:])
        if x.ndim != len(want) + 1 or any(w is not None and w != g for w, g in zip(want, x.shape[1:])):
            raise UsageError(f"--data {path}: input {name!r} expects shape (N, "
                             f"{', '.join('?' if w is None else str(w) for w in want)}) but the file has {x.shape}")
        if len(x) != n:
            raise UsageError(f"--data {path}: inputs have different numbers of examples")
    if y is not None and len(y) != n:
        raise UsageError(f"--data {path}: y has {len(y)} examples but x has {n}")
    if n < OVERFIT_EXAMPLES:
        raise UsageError(f"--data {path}: needs at least {OVERFIT_EXAMPLES} examples, the file has {n}")
    for name, x, tensor in zip(spec_names, xs, model.inputs):
        want_int = "int" in str(tensor.dtype)
        if x.dtype.kind not in "biuf" or (want_int and x.dtype.kind == "f" and not np.all(np.mod(x, 1) == 0)):
            raise UsageError(f"--data {path}: input {name!r} expects {tensor.dtype} values but the file holds {x.dtype}")
    keep = min(n, MAX_DATA_EXAMPLES)
    xs = [x[:keep] for x in xs]
    return Sample(xs, None if y is None else y[:keep], False, f"{keep} examples from {path}")


def _from_function(target: str, names: list) -> tuple[dict, np.ndarray | None]:
    """module:function returning arrays, (x, y), a dict, or a tf.data.Dataset (a bounded sample is taken)."""
    import importlib

    from kerascheck.errors import UsageError

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
    if isinstance(value, tuple) and len(value) == 2:
        x, y = value
    elif isinstance(value, dict):
        y = value.get("y")
        return {k: np.asarray(v) for k, v in value.items() if k != "y"}, (None if y is None else np.asarray(y))
    else:
        x, y = value, None
    if isinstance(x, dict):
        arrays = {f"x_{k}": np.asarray(v) for k, v in x.items()}
    elif isinstance(x, (list, tuple)):
        arrays = {f"x_{n}": np.asarray(v) for n, v in zip(names, x)}
    else:
        arrays = {"x": np.asarray(x)}
    return arrays, (None if y is None else np.asarray(y))


# ---------------------------------------------------------------- training


class Trainer:
    """One compiled train step with per-layer gradient norms, reused across runs."""

    def __init__(self, model, setup: Setup):
        import keras
        import tensorflow as tf

        self.tf, self.keras, self.model, self.setup = tf, keras, model, setup
        self.vars = list(model.trainable_variables)
        self.owner = _variable_owners(model)
        self.layers = list(dict.fromkeys(self.owner.get(id(v), "?") for v in self.vars))
        self.kernel_owners = [self.owner.get(id(v), "?") for v in self.vars if len(v.shape) >= 2]
        self.initial = [np.array(v.numpy()) for v in model.variables]

    def reset(self):
        for v, value in zip(self.model.variables, self.initial):
            v.assign(value)

    def _step_fn(self, optimizer):
        tf, model, loss_fn, vars_ = self.tf, self.model, self.setup.loss_fn, self.vars
        optimizer.build(vars_)

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                loss = loss_fn(y, pred)
                if model.losses:
                    loss = loss + tf.add_n([tf.cast(l, loss.dtype) for l in model.losses])
            grads = tape.gradient(loss, vars_)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, vars_)]
            norms = tf.stack([tf.norm(tf.cast(g, tf.float32)) for g in grads])
            kernels = [v for v in vars_ if len(v.shape) >= 2]
            before = [tf.identity(v) for v in kernels]
            optimizer.apply(grads, vars_)
            # ||update|| / ||weights|| of each kernel: about 1e-3 is healthy.
            ratios = tf.stack([tf.norm(tf.cast(v - b, tf.float32)) / (tf.norm(tf.cast(b, tf.float32)) + 1e-12)
                               for v, b in zip(kernels, before)]) if kernels else tf.zeros([0])
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))) for v in vars_])
            return loss, norms, finite, ratios
        return step

    def train(self, batches, steps: int, learning_rate: float | None, deadline: float,
              stop=None, override_lr: bool = True, progress=None) -> TrainRun:
        """Train from the loaded weights for up to `steps` steps; stop early on divergence or `stop()`."""
        self.reset()
        optimizer = self.setup.make_optimizer(learning_rate if override_lr else None)
        step = self._step_fn(optimizer)
        run = TrainRun(learning_rate if learning_rate is not None else self.setup.learning_rate, steps)
        run.layer_norms = {name: [] for name in self.layers}
        first = None
        for i in range(steps):
            if time.monotonic() > deadline:
                run.cut = True
                break
            x, y = batches(i)
            if progress is not None and i % 10 == 0:
                progress(i, steps)
            loss, norms, finite, ratios = step(x, y)
            loss = float(loss)
            norms = np.asarray(norms, dtype=np.float64)
            run.losses.append(loss)
            per_layer: dict = {}
            per_kernel: dict = {}
            for v, n in zip(self.vars, norms):
                name = self.owner.get(id(v), "?")
                per_layer[name] = per_layer.get(name, 0.0) + float(n) ** 2
                if len(v.shape) >= 2:
                    per_kernel[name] = per_kernel.get(name, 0.0) + float(n) ** 2
            for name in self.layers:
                run.layer_norms[name].append(math.sqrt(per_layer.get(name, 0.0)))
            for name, sq in per_kernel.items():
                run.kernel_norms.setdefault(name, []).append(math.sqrt(sq))
            run.global_norms.append(float(np.sqrt(np.sum(norms ** 2))))
            for name, r in zip(self.kernel_owners, np.asarray(ratios, dtype=np.float64)):
                run.update_ratios.setdefault(name, []).append(float(r))
            if first is None and math.isfinite(loss):
                first = loss
            if not math.isfinite(loss) or not bool(finite):
                run.diverged_at, run.why = i, "nan"
                break
            if first is not None and loss > EXPLOSION_FACTOR * max(first, 1e-2):
                run.diverged_at, run.why = i, "explosion"
                break
            if stop is not None and stop(i, loss):
                break
        del step, optimizer
        import gc

        gc.collect()  # each run traces its own step; free the last one before the next (ResNet50: GBs)
        return run


def _variable_owners(model) -> dict:
    """id(variable) -> qualified name of the layer that owns it, looking into nested models."""
    import keras

    owners: dict = {}

    def walk(layer, prefix):
        if isinstance(layer, keras.Model) and hasattr(layer, "layers") and prefix is not None:
            for sub in layer.layers:
                walk(sub, f"{prefix}{layer.name}/")
            return
        for v in layer.trainable_variables:
            owners.setdefault(id(v), f"{prefix or ''}{layer.name}")

    for top in model.layers:
        walk(top, "")
    return owners


def _batcher(sample: Sample, rng: np.random.Generator, size: int | None = None):
    """Batches for the probe training: 32 examples, or 8 for large models (memory on a CPU)."""
    n = len(sample)
    size = size or _BATCH[0]
    size = min(size, n)
    order = rng.permutation(n)

    def batches(i):
        nonlocal order
        start = (i * size) % n
        if start + size > n:
            order = rng.permutation(n)
            start = 0
        idx = order[start:start + size]
        x, y = sample.take(idx)
        return (x[0] if len(x) == 1 else x), y
    return batches


# ------------------------------------------------------------------ probes


def run_probes(model, spec, options: Options, want: set) -> ProbeResults:
    """Plan and run the probes the selected rules need, within options.budget seconds."""
    import keras

    start = time.monotonic()
    deadline = start + options.budget
    setup = Setup(model, spec)
    keras.utils.set_random_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    if options.data:
        sample = load_data(options.data, model, spec)
        if sample.y is None:
            synthetic = synthesize(model, spec, setup, rng, n=len(sample))
            sample = Sample(sample.x, synthetic.y, False, sample.description + " with synthetic labels")
            sample.synthetic_labels = True
    else:
        sample = synthesize(model, spec, setup, rng)
    trainer = Trainer(model, setup)
    _BATCH[0] = BATCH_SIZE if model.count_params() < LARGE_MODEL_PARAMS else 8
    results = ProbeResults(device=options.device_used or "CPU", synthetic=sample.synthetic,
                           data_description=sample.description, defaults=setup.defaults,
                           loss_name=setup.loss_name, task=setup.task)
    results.layer_order = [name for name in trainer.layers]
    for v in trainer.vars:
        name = trainer.owner.get(id(v), "?")
        results.layer_params[name] = results.layer_params.get(name, 0) + int(np.prod(v.shape))
        if len(v.shape) >= 2:
            results.kernel_params[name] = results.kernel_params.get(name, 0) + int(np.prod(v.shape))

    def share(fraction):
        return min(deadline, time.monotonic() + fraction * options.budget)

    progress = _Progress(options.progress, spec.path)
    if "data" in want and not sample.synthetic:
        results.input_stats = _input_stats(model, spec, sample)
        if sample.y is not None and not getattr(sample, "synthetic_labels", False):
            results.target_stats = _stats(np.asarray(sample.y, dtype=np.float64).reshape(len(sample.y), -1))

    if want & {"train", "sweep", "gradients"} and trainer.vars:
        results.train = trainer.train(_batcher(sample, np.random.default_rng(options.seed)), TRAIN_STEPS,
                                      None, share(0.3), override_lr=False,
                                      progress=progress.stage("training at the configured rate"))
        if results.train.cut:
            results.cut.append(f"training at the configured rate stopped after {results.train.steps_done} of "
                               f"{TRAIN_STEPS} steps")
        if results.train.diverged_at is not None:
            _sweep(trainer, sample, results, options, share(0.25))
            results.nan_layer = _locate_divergence(trainer, sample, results.train, options)
    if "overfit" in want:
        results.overfit = _overfit(trainer, sample, setup, options, share(0.35),
                                   progress.stage("overfitting 10 examples"))
    if "batch" in want and time.monotonic() < deadline:
        results.batch = _batch_dependence(model, sample)
    elif "batch" in want:
        results.cut.append("batch-dependence probe skipped: no budget left")
    if "activations" in want and time.monotonic() < deadline:
        trainer.reset()
        results.activations = _activation_stats(model, sample)
    trainer.reset()
    progress.done()
    results.seconds = time.monotonic() - start
    return results


def _sweep(trainer, sample, results, options, deadline):
    lr = results.train.learning_rate
    for k in range(1, SWEEP_TRIES + 1):
        if time.monotonic() > deadline:
            results.cut.append(f"learning-rate sweep stopped after {k - 1} tries")
            return
        lr_k = lr / 3 ** k
        run = trainer.train(_batcher(sample, np.random.default_rng(options.seed)), TRAIN_STEPS, lr_k, deadline)
        results.sweep.append((lr_k, run.diverged_at))
        if run.diverged_at is None and not run.cut:
            results.stable_run = run
            return


def _locate_divergence(trainer, sample, run: TrainRun, options) -> dict | None:
    """Replay up to the divergent step and find where the non-finite values start.

    Checked in the order they arise within the step: activations in the forward
    pass (ReLU can swallow NaN inside a compiled graph, so each layer's output is
    inspected, not only the loss), then gradients, then the weights the update wrote.
    """
    import tensorflow as tf

    model = trainer.model
    batches = _batcher(sample, np.random.default_rng(options.seed))
    trainer.reset()
    optimizer = trainer.setup.make_optimizer(None)
    step = trainer._step_fn(optimizer)
    for i in range(run.diverged_at):
        step(*batches(i))
    x, y = batches(run.diverged_at)
    found = None
    extractor = _extractor(model)
    if extractor is not None:
        layers, probe = extractor
        for layer, out in zip(layers, probe(x, training=True)):
            arr = np.asarray(out)
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                found = {"layer": layer.name, "where": "activations", "step": run.diverged_at,
                         "nonfinite": int(np.count_nonzero(~np.isfinite(arr)))}
                break
    if found is None:
        with tf.GradientTape() as tape:
            loss = trainer.setup.loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, trainer.vars)
        # Gradients flow from the output back: a non-finite value born in one layer's
        # backward pass reaches every layer before it, so the origin is the non-finite
        # layer nearest the output, the last one in variable order.
        for v, g in zip(trainer.vars, grads):
            if g is not None and not np.all(np.isfinite(np.asarray(g))):
                found = {"layer": trainer.owner.get(id(v), "?"), "where": "gradients", "step": run.diverged_at}
    if found is None:
        step(x, y)
        for v in trainer.vars:
            if not np.all(np.isfinite(np.asarray(v.numpy(), dtype=np.float64))):
                found = {"layer": trainer.owner.get(id(v), "?"), "where": "weights after the update",
                         "step": run.diverged_at}
                break
    if found is None and run.why == "explosion":
        # Finite but exploding: name the layer whose gradient grew the most before the blow-up.
        growth = {name: norms[-1] / max(norms[0], 1e-12) for name, norms in run.layer_norms.items() if norms}
        if growth:
            name = max(growth, key=growth.get)
            found = {"layer": name, "where": "gradient growth", "step": run.diverged_at,
                     "growth": float(growth[name])}
    trainer.reset()
    return found


def _extractor(model, keep=None):
    """(layers, model returning those top-level layers' outputs), or None where Keras cannot build one.

    `keep` picks the layers (all by default): every extra output is memory for each example.
    """
    import keras

    try:
        layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer) and (keep is None or keep(l))]
        if not layers:
            return [], None
        probe = keras.Model(model.inputs, [l.output for l in layers])
        return layers, probe
    except Exception:
        return None


def _overfit(trainer, sample, setup, options, deadline, progress=None) -> dict:
    rng = np.random.default_rng(options.seed + 1)
    idx = rng.choice(len(sample), size=min(OVERFIT_EXAMPLES, len(sample)), replace=False)
    x, y = sample.take(idx)
    x_in = x[0] if len(x) == 1 else x
    losses_seen: list = []

    def stop(i, loss):
        losses_seen.append(loss)
        if i % 10 != 9:
            return False
        accuracy, _ = _score(trainer.model, x_in, y, setup)
        if accuracy is not None:
            return accuracy == 1.0
        return loss <= 0.01 * max(losses_seen[0], 1e-12)

    if not trainer.vars:
        run = TrainRun(setup.learning_rate, OVERFIT_STEPS)
    else:
        run = trainer.train(lambda i: (x_in, y), OVERFIT_STEPS, None, deadline, stop=stop, override_lr=False,
                            progress=progress)
    accuracy, spread = _score(trainer.model, x_in, y, setup)
    if run.losses:
        first = next((v for v in run.losses if math.isfinite(v)), float("nan"))
        last = run.losses[-1]
    else:  # nothing to train: score the loss as it stands
        first = last = float(setup.loss_fn(y, trainer.model(x_in, training=False)))
    zero_grad = [name for name, norms in run.layer_norms.items() if norms and max(norms) == 0.0]
    if accuracy is not None:
        ok = accuracy == 1.0
    else:
        ok = math.isfinite(last) and last <= 0.01 * max(first, 1e-12)
    return {"run": run, "ok": ok, "accuracy": accuracy, "first_loss": first, "last_loss": last,
            "prediction_spread": spread, "zero_gradient_layers": zero_grad,
            "trainable_parameters": int(sum(int(np.prod(v.shape)) for v in trainer.vars)),
            "learning_rate": run.learning_rate}


def _score(model, x, y, setup) -> tuple[float | None, float]:
    """(accuracy for classification or None, spread of predictions across examples)."""
    pred = np.asarray(model(x, training=False), dtype=np.float64)
    spread = float(np.max(np.std(pred, axis=0))) if len(pred) > 1 else 0.0
    if setup.task != "classification":
        return None, spread
    y = np.asarray(y)
    name = setup.loss_name
    if name.startswith("sparse"):
        correct = np.argmax(pred, axis=-1) == y.reshape(pred.shape[:-1])
    elif name.startswith("categorical"):
        correct = np.argmax(pred, axis=-1) == np.argmax(y, axis=-1)
    else:
        threshold = 0.0 if setup.from_logits else 0.5
        correct = (pred > threshold) == (y.reshape(pred.shape) > 0.5)
    return float(np.mean(correct)), spread


def _batch_dependence(model, sample) -> dict:
    n = min(8, len(sample))
    x, _ = sample.take(np.arange(n))
    x_in = x[0] if len(x) == 1 else x
    whole = np.asarray(model(x_in, training=False), dtype=np.float64)
    single = np.concatenate([np.asarray(model(x[0][i:i + 1] if len(x) == 1 else [a[i:i + 1] for a in x],
                                               training=False), dtype=np.float64) for i in range(n)])
    perm = np.random.default_rng(7).permutation(n)
    xs = x[0][perm] if len(x) == 1 else [a[perm] for a in x]
    shuffled = np.empty_like(whole)
    shuffled[perm] = np.asarray(model(xs, training=False), dtype=np.float64)
    scale = 1.0 + float(np.max(np.abs(whole)))
    diff_single = float(np.max(np.abs(whole - single)))
    diff_shuffled = float(np.max(np.abs(whole - shuffled)))
    result = {"examples": n, "max_diff_single": diff_single, "max_diff_shuffled": diff_shuffled,
              "tolerance": 1e-4 * scale, "first_layer": None}
    if max(diff_single, diff_shuffled) > result["tolerance"]:
        extractor = _extractor(model)
        if extractor is not None:
            layers, probe = extractor
            outs_whole = probe(x_in, training=False)
            outs_single = [probe(x[0][i:i + 1] if len(x) == 1 else [a[i:i + 1] for a in x], training=False)
                           for i in range(n)]
            for k, layer in enumerate(layers):
                w = np.asarray(outs_whole[k], dtype=np.float64)
                s = np.concatenate([np.asarray(o[k], dtype=np.float64) for o in outs_single])
                if w.shape == s.shape and np.max(np.abs(w - s)) > 1e-4 * (1.0 + np.max(np.abs(w))):
                    result["first_layer"] = layer.name
                    result["first_layer_diff"] = float(np.max(np.abs(w - s)))
                    break
    return result


RELU_FAMILY = {"relu", "relu6"}
SQUASH = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99), "hard_sigmoid": (0.01, 0.99)}


def _activation_kind(layer) -> str | None:
    cls = type(layer).__name__
    if cls == "ReLU":
        return "relu"
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) if act is not None else None
    return name if name in RELU_FAMILY or name in SQUASH else None


def _activation_stats(model, sample) -> dict | None:
    """Dead and saturated units per layer, streamed over the sample in batches (memory: one batch)."""
    extractor = _extractor(model, keep=lambda l: _activation_kind(l) is not None)
    if extractor is None:
        return None
    layers, probe = extractor
    if not layers:
        return {}
    # Large models: fewer, smaller batches (ResNet50's ReLU outputs are ~60 MB per example).
    n = min(len(sample), SAMPLE_SIZE if _BATCH[0] == BATCH_SIZE else 64)
    active: dict = {}  # layer -> per unit: ever positive (ReLU) / count of saturated examples
    for start in range(0, n, _BATCH[0]):
        x, _ = sample.take(np.arange(start, min(start + _BATCH[0], n)))
        outputs = probe(x[0] if len(x) == 1 else x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for layer, out in zip(layers, outputs):
            kind = _activation_kind(layer)
            a = np.asarray(out, dtype=np.float32)
            per_example = a.reshape(a.shape[0], -1, a.shape[-1])  # units on the last axis
            if kind in RELU_FAMILY:
                alive = np.any(per_example > 0.0, axis=(0, 1))
                active[layer.name] = active.get(layer.name, np.zeros_like(alive)) | alive
            else:
                lo, hi = SQUASH[kind]
                # An example saturates a unit when it does so at every position.
                sat = np.sum(np.all((per_example <= lo) | (per_example >= hi), axis=1), axis=0)
                active[layer.name] = active.get(layer.name, np.zeros_like(sat)) + sat
        del outputs
    stats = {}
    for layer in layers:
        kind = _activation_kind(layer)
        acc = active[layer.name]
        if kind in RELU_FAMILY:
            dead = ~acc
            stats[layer.name] = {"kind": kind, "units": int(acc.size), "dead": int(np.count_nonzero(dead)),
                                 "dead_share": float(np.mean(dead)), "examples": n}
        else:
            saturated = acc >= 0.99 * n
            stats[layer.name] = {"kind": kind, "units": int(acc.size), "saturated": int(np.count_nonzero(saturated)),
                                 "saturated_share": float(np.mean(saturated)), "examples": n}
    return stats


class _Progress:
    """One self-rewriting status line on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, path: str):
        import sys

        self.enabled, self.path, self.stream, self.width = enabled, path, sys.stderr, 0

    def stage(self, what: str):
        if not self.enabled:
            return None

        def show(i, total):
            text = f"kerascheck: {self.path}: {what} ({i}/{total})"
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)
        return show

    def done(self):
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _stats(a: np.ndarray) -> dict:
    """Per-feature statistics of a 2-D array (examples x features), first 256 features."""
    a = a[:, :256]
    return {"mean": a.mean(axis=0).tolist(), "std": a.std(axis=0).tolist(), "min": a.min(axis=0).tolist(),
            "max": a.max(axis=0).tolist(), "integer_valued": bool(np.all(np.mod(a, 1) == 0)),
            "features": int(a.shape[1]), "examples": int(a.shape[0])}


DATA_STATS_EXAMPLES = 512


def _input_stats(model, spec, sample) -> list:
    """For each input, statistics of what reaches the first weighted layer (after in-model scaling)."""
    from kerascheck.topology import graph_of

    graph = graph_of(spec)
    n = min(len(sample), DATA_STATS_EXAMPLES)
    places = []
    for inp in spec.inputs[:len(sample.x)]:
        start = spec.layer(inp.name)
        places.append(_first_weighted(graph, start.qualname) if start else (None, None))
    wanted = {feeder for _, feeder in places if feeder}
    collected: dict = {name: [] for name in wanted}
    extractor = _extractor(model, keep=lambda l: l.name in wanted) if wanted else None
    if extractor is not None and extractor[1] is not None:
        layers, probe = extractor
        for start in range(0, n, _BATCH[0]):  # only the feeding layers' outputs, a batch at a time
            x, _ = sample.take(np.arange(start, min(start + _BATCH[0], n)))
            outputs = probe(x[0] if len(x) == 1 else x, training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            for layer, output in zip(layers, outputs):
                collected[layer.name].append(np.asarray(output, dtype=np.float64))
    out = []
    for i, (inp, (first, feeder)) in enumerate(zip(spec.inputs, places)):
        if feeder in collected and collected[feeder]:
            arr, measured_at = np.concatenate(collected[feeder]), f"the output of '{feeder}'"
        else:
            arr, measured_at = np.asarray(sample.x[i][:n], dtype=np.float64), "the raw input"
        if arr.ndim == 1:
            arr = arr[:, None]
        stats = _stats(arr.reshape(-1, arr.shape[-1]))
        stats.update({"input": inp.name, "first_weighted": first, "measured_at": measured_at,
                      "raw_min": float(np.min(sample.x[i][:n])), "raw_max": float(np.max(sample.x[i][:n])),
                      "examples": n})
        out.append(stats)
    return out


def _first_weighted(graph, start):
    """(first weighted layer reachable from `start`, the top-level layer feeding it) along the first path."""
    current, seen = start, set()
    while current not in seen:
        seen.add(current)
        consumers = graph.consumers(current)
        if not consumers:
            return None, None
        nxt = graph.by_qual[consumers[0]]
        if nxt.weights and nxt.class_name not in ("Normalization", "Rescaling"):
            feeder = graph.by_qual[current]
            return nxt.qualname, (feeder.name if not feeder.scope and feeder.class_name != "InputLayer" else None)
        current = nxt.qualname
    return None, None
