"""Short training runs of kerascheck's copy of the model, with per-layer gradient norms at every step.

Three ways to take a step, as `fit` would: kerascheck's own step with the compiled
loss (plus whatever the layers add with `add_loss`); the layers' losses alone for a
model compiled without a loss; or the model's own `train_step`, whose gradients are
read where it hands them to the optimizer.
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field

import numpy as np
from kerascheck.facts.stats import compute_fans

EXPLOSION_FACTOR = 1e3  # loss this many times its start counts as divergence, NaN or not


@dataclass
class TrainRun:
    learning_rate: float
    steps_planned: int
    losses: list = field(default_factory=list)
    global_norms: list = field(default_factory=list)
    layer_norms: dict = field(default_factory=dict)  # layer -> gradient L2 norm per step
    kernel_norms: dict = field(default_factory=dict)  # layer -> gradient L2 norm of its kernels per step
    update_ratios: dict = field(default_factory=dict)  # layer -> ||kernel update|| / ||kernel|| per step
    # layer -> kernel values the step's gradient touched: an embedding's gradient reaches only the
    # rows the batch looked up, so its RMS is taken over those, not over the whole table
    kernel_sizes: dict = field(default_factory=dict)
    lookups: list = field(default_factory=list)  # layers whose kernel gradient is sparse: embedding tables
    unused: list = field(default_factory=list)  # layers the step's loss does not reach: no gradient at all
    # layer -> (L2 norm of its kernels when the run started, the norm LeCun-scaled kernels of their
    # shapes have): what the first step's gradient is judged against
    start_weights: dict = field(default_factory=dict)
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


def _f(v) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))


class Trainer:
    """One compiled train step with per-layer gradient norms, reused across runs."""
    def __init__(self, model, io, setup, owners: dict):
        import keras
        import tensorflow as tf

        self.tf, self.keras, self.model, self.io, self.setup = tf, keras, model, io, setup
        self.vars = list(model.trainable_variables)
        self.owner = owners
        self.layers = list(dict.fromkeys(self.owner.get(id(v), "?") for v in self.vars))
        self.kernel_owners = [self.owner.get(id(v), "?") for v in self.vars if len(v.shape) >= 2]
        self.initial = [np.array(v.numpy()) for v in model.variables]
        self.lookups: list = []  # filled when a step is traced: layers whose gradient is sparse
        self.reached: set = set()  # filled when a step is traced: layers some gradient reaches

    def reset(self):
        for v, value in zip(self.model.variables, self.initial):
            v.assign(value)

    def loss(self, x, y, training: bool = True):
        """The loss the step minimises, for the batch (x, y) (eagerly)."""
        tf = self.tf
        preds = self.io(x if isinstance(x, list) else [x], training=training)
        total = self.setup.total_loss(y, preds) if self.setup.mode == "loss" else None
        # As Keras's Trainer aggregates each added loss: summed, whatever its shape (CTC gives (batch, 1)).
        extra = [tf.reduce_sum(tf.cast(l, tf.float32)) for l in self.model.losses]
        if extra:
            total = tf.add_n(extra) if total is None else total + tf.add_n(extra)
        return total

    def step_fn(self, optimizer):
        if self.setup.mode == "train_step":
            return self._own_step_fn(optimizer)
        tf, vars_ = self.tf, self.vars
        optimizer.build(vars_)

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = self.loss(x, y, training=True)
            grads = tape.gradient(loss, vars_)
            return self._apply(optimizer, loss, grads)
        return step

    def _apply(self, optimizer, loss, grads):
        tf, vars_ = self.tf, self.vars
        self.reached.update(self.owner.get(id(v), "?") for g, v in zip(grads, vars_) if g is not None)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, vars_)]
        norms = tf.stack([tf.norm(tf.cast(g, tf.float32)) for g in grads])
        self._sizes = touched_sizes(tf, grads, vars_)
        self.lookups = sorted({self.owner.get(id(v), "?") for g, v in zip(grads, vars_)
                               if isinstance(g, tf.IndexedSlices) and len(v.shape) >= 2})
        kernels = [v for v in vars_ if len(v.shape) >= 2]
        before = [tf.identity(v) for v in kernels]
        optimizer.apply(grads, vars_)
        # ||update|| / ||weights|| of each kernel: about 1e-3 is healthy.
        ratios = tf.stack([tf.norm(tf.cast(v - b, tf.float32)) / (tf.norm(tf.cast(b, tf.float32)) + 1e-12)
                           for v, b in zip(kernels, before)]) if kernels else tf.zeros([0])
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))) for v in vars_])
        return tf.cast(loss, tf.float32), norms, finite, ratios, self._sizes

    def _own_step_fn(self, optimizer):
        """The model's own train_step, its gradients read where it hands them to the optimizer."""
        tf, model, vars_ = self.tf, self.model, self.vars
        optimizer.build(vars_)
        seen = tf.Variable(tf.zeros([len(vars_)]), trainable=False)
        sizes = tf.Variable(tf.constant([float(np.prod(v.shape)) for v in vars_], tf.float32), trainable=False)
        index = {id(v): i for i, v in enumerate(vars_)}
        original_apply = optimizer.apply

        def apply(grads, variables=None, *args, **kwargs):
            variables = list(variables) if variables is not None else vars_
            grads = list(grads)
            norms = [tf.zeros([]) for _ in vars_]
            touched = [tf.constant(float(np.prod(v.shape))) for v in vars_]
            for g, v in zip(grads, variables):
                if g is not None and id(v) in index:
                    self.reached.add(self.owner.get(id(v), "?"))
                    norms[index[id(v)]] = tf.norm(tf.cast(g, tf.float32))
                    touched[index[id(v)]] = touched_sizes(tf, [g], [v])[0]
                    if isinstance(g, tf.IndexedSlices) and len(v.shape) >= 2:
                        self.lookups = sorted(set(self.lookups) | {self.owner.get(id(v), "?")})
            seen.assign(tf.stack(norms))
            sizes.assign(tf.stack(touched))
            return original_apply(grads, variables, *args, **kwargs)

        optimizer.apply = apply
        self.setup.compile_model(model, optimizer)
        model.optimizer = optimizer
        # The optimizers a subclass's own compile() hands it (a GAN's d_optimizer, g_optimizer) are not
        # restored by Keras; the file keeps their class and rate, so they are made again, watched alike.
        for attribute, made in self.setup.make_held_optimizers():
            made.build([v for v in vars_])
            held_apply = made.apply

            def watched(grads, variables=None, *args, _apply=held_apply, **kwargs):
                variables = list(variables) if variables is not None else vars_
                grads = list(grads)
                norms = tf.unstack(seen) if len(vars_) else []
                touched = tf.unstack(sizes) if len(vars_) else []
                for g, v in zip(grads, variables):
                    if g is not None and id(v) in index:
                        self.reached.add(self.owner.get(id(v), "?"))
                        norms[index[id(v)]] = tf.norm(tf.cast(g, tf.float32))
                        touched[index[id(v)]] = touched_sizes(tf, [g], [v])[0]
                if len(vars_):
                    seen.assign(tf.stack(norms))
                    sizes.assign(tf.stack(touched))
                return _apply(grads, variables, *args, **kwargs)

            made.apply = watched
            setattr(model, attribute, made)
        kernels = [v for v in vars_ if len(v.shape) >= 2]

        @tf.function(reduce_retracing=True)
        def step(x, y):
            for metric in model.metrics:  # a fresh mean each step: its result is this step's loss
                metric.reset_state()
            before = [tf.identity(v) for v in kernels]
            inputs = self.io.pack_fit(list(x))
            # As fit() packs a batch (keras's pack_x_y_sample_weight): x alone when there are no labels.
            names = getattr(self.io, "fit_label_names", None)
            if y is None:
                data = (inputs,) if isinstance(inputs, (list, tuple)) else inputs
            elif names:
                data = (inputs, dict(zip(names, y)))  # the dict fit() got (a detector's boxes and labels)
            else:
                data = (inputs, y[0] if len(y) == 1 else list(y))
            logs = model.train_step(data)
            loss = logs.get("loss", next(iter(logs.values()))) if isinstance(logs, dict) else logs
            ratios = tf.stack([tf.norm(tf.cast(v - b, tf.float32)) / (tf.norm(tf.cast(b, tf.float32)) + 1e-12)
                               for v, b in zip(kernels, before)]) if kernels else tf.zeros([0])
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))) for v in vars_])
            return tf.cast(loss, tf.float32), tf.identity(seen), finite, ratios, tf.identity(sizes)
        return step

    def train(self, batches, steps: int, learning_rate: float | None, deadline: float,
              stop=None, override_lr: bool = True, progress=None) -> TrainRun:
        """Train from the loaded weights for up to `steps` steps; stop early on divergence or `stop()`."""
        self.reset()
        optimizer = self.setup.make_optimizer(learning_rate if override_lr else None)
        step = self.step_fn(optimizer)
        run = TrainRun(learning_rate if learning_rate is not None else self.setup.learning_rate, steps)
        run.layer_norms = {name: [] for name in self.layers}
        run.start_weights = self.start_weights()
        first = None
        for i in range(steps):
            if time.monotonic() > deadline:
                run.cut = True
                break
            x, y = batches(i)
            if progress is not None and i % 10 == 0:
                progress(i, steps)
            try:
                loss, norms, finite, ratios, sizes = step(x, y)
            except AttributeError as exc:
                if self.setup.mode != "train_step" or i:
                    raise
                raise TrainStepUnusable(own_step_reason(self.model, exc)) from None
            loss = float(loss)
            self._record(run, loss, np.asarray(norms, dtype=np.float64), np.asarray(ratios, dtype=np.float64),
                         np.asarray(sizes, dtype=np.float64))
            if first is None and math.isfinite(loss):
                first = loss
            if not math.isfinite(loss) or not bool(finite):
                run.diverged_at, run.why = i, "nan"
                break
            if first is not None and abs(loss) > EXPLOSION_FACTOR * max(abs(first), 1e-2):
                run.diverged_at, run.why = i, "explosion"
                break
            if stop is not None and stop(i, loss):
                break
        run.lookups = list(self.lookups)  # known once a step was traced
        if run.steps_done:
            run.unused = [name for name in self.layers if name not in self.reached]
        del step, optimizer
        gc.collect()  # each run traces its own step; free the last one before the next (ResNet50: GBs)
        return run

    def start_weights(self) -> dict:
        """Per layer, the norm of its kernels now and the norm kernels of their shapes have when drawn
        with variance 1/fan_in (LeCun): the scale a gradient at initialisation is measured against."""

        sq: dict = {}
        for v in self.vars:
            if len(v.shape) < 2:
                continue
            name = self.owner.get(id(v), "?")
            value = np.asarray(v.numpy(), dtype=np.float64)
            fan_in, _ = compute_fans(tuple(int(d) for d in v.shape))
            now, ref = sq.get(name, (0.0, 0.0))
            sq[name] = (now + float(np.sum(value * value)), ref + value.size / max(fan_in, 1))
        return {name: (math.sqrt(a), math.sqrt(b)) for name, (a, b) in sq.items()}

    def _record(self, run: TrainRun, loss: float, norms, ratios, sizes=None) -> None:
        run.losses.append(loss)
        record_norms(run, norms, ratios, self.vars, self.owner, self.layers, self.kernel_owners, sizes)


class TrainStepUnusable(Exception):
    """The model's own train_step needs what the file does not hold; said as it stands."""


def own_step_reason(model, exc: AttributeError) -> str:
    import re

    import keras

    found = re.search(r"has no attribute '(\w+)'", str(exc))
    what = f"self.{found.group(1)}" if found else "attributes"
    own = getattr(type(model), "train_step", None) is not getattr(keras.Model, "train_step", None)
    where = "train_step" if own else "compute_loss (which Keras's train_step calls)"
    return (f"{type(model).__name__}.{where} uses {what}, which the model's own compile() sets and Keras does not "
            "save, so kerascheck cannot run it (it never trains a model with a loss it made up)")


def touched_sizes(tf, grads: list, variables: list):
    """Per variable, how many of its values the gradient touches (a float32 tensor): every value of a
    dense gradient; for an embedding's sparse gradient, the rows looked up times the row size."""
    out = []
    for g, v in zip(grads, variables):
        if isinstance(g, tf.IndexedSlices):
            rows = tf.size(tf.unique(tf.reshape(g.indices, [-1]))[0])
            row = int(np.prod(v.shape[1:])) if len(v.shape) > 1 else 1
            out.append(tf.cast(rows * row, tf.float32))
        else:
            out.append(tf.constant(float(np.prod(v.shape)), tf.float32))
    return tf.stack(out) if out else tf.zeros([0])


def record_norms(run: TrainRun, norms, ratios, variables: list, owner: dict, layers: list,
                 kernel_owners: list, sizes=None) -> None:
    """Add one step's gradient norms (one per variable) and kernel update ratios to `run`, per layer."""
    per_layer: dict = {}
    per_kernel: dict = {}
    per_size: dict = {}
    for i, (v, n) in enumerate(zip(variables, norms)):
        name = owner.get(id(v), "?")
        per_layer[name] = per_layer.get(name, 0.0) + float(n) ** 2
        if len(v.shape) >= 2:
            per_kernel[name] = per_kernel.get(name, 0.0) + float(n) ** 2
            size = float(sizes[i]) if sizes is not None and i < len(sizes) else float(np.prod(v.shape))
            per_size[name] = per_size.get(name, 0.0) + size
    for name in layers:
        run.layer_norms[name].append(math.sqrt(per_layer.get(name, 0.0)))
    for name, sq in per_kernel.items():
        run.kernel_norms.setdefault(name, []).append(math.sqrt(sq))
        run.kernel_sizes.setdefault(name, []).append(per_size[name])
    run.global_norms.append(float(np.sqrt(np.sum(np.asarray(norms, dtype=np.float64) ** 2))))
    for name, r in zip(kernel_owners, ratios):
        run.update_ratios.setdefault(name, []).append(float(r))


def batcher(sample, rng: np.random.Generator, size: int):
    """Batches for the probe training, reshuffled each pass over the sample."""
    n = len(sample)
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
        return x, y
    return batches
