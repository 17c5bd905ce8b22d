"""Recording the training run: what the monitor measures, and when.

* every step: the loss Keras reports, so a NaN/Inf is caught at the step it appears;
* every `every` steps, on a fixed batch (`data`, or the first training batch): the
  loss and the gradient norm of every weight (with the model's compiled loss, or
  through its own train_step with the optimizer's update held back), and the
  update/weight ratio of every kernel over the real training step just taken;
* every tenth measurement and at each epoch's end: dead and saturated units
  (kerascheck.tiers.probe.measure.activation_stats on the fixed batch);
* at each epoch's end: the loss, the validation loss and the learning rate in force
  (read from the optimizer, so schedules and ReduceLROnPlateau count), and for models
  with BatchNormalization or Dropout the fixed batch's loss in training and in
  inference mode.

All of it goes into a LiveRun, the training run of the LiveResults the rules read.
With `every=None` the cadence adapts so that the measurements take about OVERHEAD of
the training time.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from kerascheck.errors import error_line
from kerascheck.tiers.modelio import layer_paths, variable_owners
from kerascheck.tiers.probe.data import Sample
from kerascheck.tiers.probe.measure import activation_stats
from kerascheck.tiers.probe.results import ProbeResults
from kerascheck.tiers.probe.train import TrainRun, record_norms

OVERHEAD = 0.04  # the share of training time automatic `every` lets the measurements take
FIRST_EVERY = 10  # automatic `every` until a measurement and a step have been timed
MAX_EVERY = 1000
EVALUATE_EVERY = 10  # measurements between activation statistics and rule evaluations
FIXED_EXAMPLES = 32  # of the first training batch, when no data= is given: a measurement costs about one step on it
ACTIVATIONS_SHARE = 0.01  # of the training time, for the eager passes that record every layer's output


@dataclass
class LiveRun(TrainRun):
    """The real run as measured: TrainRun's per-step lists hold one entry per measurement."""
    steps: list = field(default_factory=list)  # the training step (1-based, this fit) of each measurement
    epochs: list = field(default_factory=list)  # the epoch (1-based) of each measurement
    rates: list = field(default_factory=list)  # the learning rate in force at each measurement
    epoch_losses: list = field(default_factory=list)  # per epoch: epoch, steps, loss, val_loss, learning_rate
    mode_gaps: list = field(default_factory=list)  # per epoch: the fixed batch's loss in training/inference mode
    mode_layers: list = field(default_factory=list)  # layers whose behaviour differs in training: dicts
    trainable_parameters: int = 0
    steps_run: int = 0
    every: int = 0
    auto_every: bool = True
    batch_examples: int = 0
    batch_source: str = ""
    finished: bool = False  # training ended (the last evaluation)
    optimizer: str = ""
    diverged_step: int | None = None  # 1-based step whose loss or weights went non-finite
    diverged_epoch: int | None = None
    replay: str = ""  # what replaying the divergence found, or why it could not be replayed

    def to_evidence(self) -> dict:
        out = super().to_evidence()
        out.update(measured_steps=list(self.steps), steps_run=self.steps_run, every=self.every,
                   diverged_step=self.diverged_step)
        return out


@dataclass
class LiveResults(ProbeResults):
    """ProbeResults whose training run is the user's own (`live`, also `train`)."""
    live: LiveRun | None = None


class Recorder:
    """One fit's measurements, and the state the other parts read: the step and epoch, the model's
    layers and weights, the run and the results, whether training has diverged."""

    def __init__(self, model, every: int | None, data):
        self.model, self.data = model, data
        self.strategy = None  # read by start()
        self.auto_every = every is None
        self.every = every or FIRST_EVERY
        self.board = None  # a board.Board when log_dir= is given
        self.steps = 0  # steps run in this fit
        self.epoch = 1
        self.diverged = False
        self.run: LiveRun | None = None
        self.results: LiveResults | None = None
        self.fixed = None  # the fixed batch, (x, y, sample_weight) as numpy
        # Set by setup_model, once the model has variables.
        self.paths = self.owners = None  # modelio.layer_paths and variable_owners
        self.trainable: list = []
        self.layer_order: list = []  # the layers that own trainable weights, input to output
        self.last_measured = None  # the step last measured; None measures at the next one
        self.seconds = 0.0  # the monitor's own time
        # Why a group of rules cannot judge this run (None while they can).
        self.no_gradients = None
        self.no_modes = None
        self.no_batch = None
        self._fixed_tensors = None
        self._activations = None
        self._measurements = 0
        self._due_steps = 0
        self._before = None
        self._step_times: deque = deque(maxlen=64)
        self._activation_seconds = 0.0
        self._started = time.perf_counter()
        self._timed_seconds = 0.0
        self._timed_measurements = 0
        self._last_entry, self._last_spent = None, 0.0

    # ------------------------------------------------------------------ set-up

    def start(self):
        """As training begins: the distribution strategy it runs under."""
        self.strategy = self.model.distribute_strategy

    def setup_model(self, params, intercept: bool):
        """What needs the model's variables: the layers, the run and the results, the compiled functions."""
        model = self.model
        self.paths = layer_paths(model)
        self.owners = variable_owners(model, self.paths)
        self.trainable = list(model.trainable_variables)
        self._kernels = [v for v in self.trainable if len(v.shape) >= 2]
        self._kernel_owners = [self.owners.get(id(v), "?") for v in self._kernels]
        self.layer_order = list(dict.fromkeys(self.owners.get(id(v), "?") for v in self.trainable))
        self._own_step = _overrides_train_step(model)
        self._has_loss = getattr(model, "_compile_loss", None) is not None
        opt = model.optimizer
        rate = self.rate()
        self.run = LiveRun(learning_rate=rate, steps_planned=_planned(params), every=self.every,
                           auto_every=self.auto_every, optimizer=type(opt).__name__ if opt is not None else "",
                           trainable_parameters=int(sum(int(np.prod(v.shape)) for v in self.trainable)),
                           mode_layers=_mode_layers(model, self.paths))
        self.run.layer_norms = {name: [] for name in self.layer_order}
        if not intercept:
            self.run.replay = (f"steps_per_execution={model.steps_per_execution}: Keras takes the batches inside "
                               "its compiled loop, so the monitor cannot keep the one that broke training")
            if self.data is None:
                self.no_batch = (f"with steps_per_execution={model.steps_per_execution} Keras takes the batches "
                                 "inside its compiled loop: pass kerascheck.Monitor(data=(x, y)) for the monitor to "
                                 "measure on")
        self.results = LiveResults(
            device=_device(model), synthetic=False, data_description="the training run", defaults=[],
            loss_name=_loss_name(model), task="unknown", learning_rate=rate, live=self.run, train=self.run,
            notes=["measured by kerascheck.Monitor during model.fit"], layer_order=list(self.layer_order))
        for v in self.trainable:
            name = self.owners.get(id(v), "?")
            size = int(np.prod(v.shape))
            self.results.layer_params[name] = self.results.layer_params.get(name, 0) + size
            if len(v.shape) >= 2:
                self.results.kernel_params[name] = self.results.kernel_params.get(name, 0) + size
        self._build_functions()

    def use_data(self):
        """The fixed batch given as data=, if one was."""
        if self.data is not None:
            self._set_fixed(_first_element(self.data), "given as data=")

    def take_first_batch(self, data):
        """The fixed batch, when none was given: the start of the first training batch."""
        if data is not None and self.fixed is None:
            self._set_fixed(local_batch(data, self.strategy), "the first training batch", FIXED_EXAMPLES)

    def _set_fixed(self, batch, source: str, cap: int | None = None):
        x, y, sw = unpack(as_numpy(batch))
        if cap is not None:
            x, y, sw = tf.nest.map_structure(lambda a: None if a is None else a[:cap], (x, y, sw))
        self.fixed = (x, y, sw)
        self._fixed_tensors = as_tensors(self.fixed)
        first = tf.nest.flatten(x)[0]
        self.run.batch_examples = int(np.shape(first)[0]) if np.ndim(first) else 1
        self.run.batch_source = source

    def _build_functions(self):
        model, trainable, kernels = self.model, self.trainable, self._kernels

        def replicas() -> float:
            # Keras divides every loss by the replicas when a strategy is in scope (each one's share).
            return float(tf.distribute.get_strategy().num_replicas_in_sync)

        def loss_on(x, y, sw, training):
            pred = model(x, training=training) if model._call_has_training_arg else model(x)
            compute = getattr(model, "_compute_loss", None) or model.compute_loss
            loss = compute(x=x, y=y, y_pred=pred, sample_weight=sw, training=training)
            return tf.cast(loss, tf.float32) * replicas()

        def norms_of(grads):
            return tf.stack([tf.norm(tf.cast(g, tf.float32)) if g is not None else tf.zeros([]) for g in grads]) \
                if grads else tf.zeros([0])

        def stateless(values=()):
            """A scope in which nothing reaches the variables: what the model would update (BatchNormalization
            statistics, random generators' states, metrics) Keras records in the scope and drops with it.
            The gradient is taken with respect to the weights' values, which the scope hands the model, and
            so works in a distribution strategy's cross-replica context too."""
            return keras.StatelessScope(state_mapping=list(zip(trainable, values)))

        def gradients(x, y, sw):
            values = [tf.identity(v) for v in trainable]
            with tf.GradientTape() as tape:
                tape.watch(values)
                with stateless(values):
                    loss = loss_on(x, y, sw, True)
            return loss, norms_of(tape.gradient(loss, values) if values else [])

        def own_gradients(x, y, sw):
            """The model's own train_step on the fixed batch, the optimizer's update held back.

            Its own tape takes the gradient with respect to the variables, so this cannot run in a
            StatelessScope: what the step changes besides the weights is copied first and put back.
            """
            protect = unique(list(model.non_trainable_variables) + list(model.metrics_variables))
            saved = [tf.identity(v) for v in protect]
            opt = model.optimizer
            seen = {}
            had = "apply" in vars(opt)
            original = vars(opt).get("apply")

            def apply(grads, variables=None, *args, **kwargs):
                seen.update({id(v): g for g, v in zip(grads, variables if variables is not None else trainable)})

            opt.apply = apply  # only while this function is traced
            try:
                with tf.control_dependencies(saved):
                    data = (x,) if y is None else ((x, y) if sw is None else (x, y, sw))
                    logs = model.train_step(data)
            finally:
                if had:
                    opt.apply = original
                else:
                    del opt.apply
            loss = logs.get("loss", next(iter(logs.values()))) if isinstance(logs, dict) and logs else \
                tf.constant(float("nan"))
            values = [tf.cast(loss, tf.float32), norms_of([seen.get(id(v)) for v in trainable])]
            with tf.control_dependencies(values):
                restored = [v.assign(s) for v, s in zip(protect, saved)]
            with tf.control_dependencies(restored):
                return tuple(tf.identity(v) for v in values)

        def modes(x, y, sw):
            with stateless():  # one scope each: the inference pass must not see the training pass's statistics
                training = loss_on(x, y, sw, True)
            with stateless():
                inference = loss_on(x, y, sw, False)
            return training, inference

        def finite():
            checked = [v for v in list(model.variables) if is_float(v)]
            return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in checked]) if checked else \
                tf.constant(True)

        def before_step():
            """Whether the weights are still finite, and the kernels as the step will find them."""
            return finite(), [tf.identity(v) for v in kernels]

        step_gradients = own_gradients if self._own_step else gradients

        def after_step(x, y, sw, before):
            """The fixed batch's loss and gradient norms, each kernel's update over the step, finiteness."""
            ratios = tf.stack([tf.norm(tf.cast(v - b, tf.float32)) / (tf.norm(tf.cast(b, tf.float32)) + 1e-12)
                               for v, b in zip(kernels, before)]) if kernels else tf.zeros([0])
            with tf.control_dependencies([ratios]):
                loss, norms = step_gradients(x, y, sw)
            return loss, norms, ratios, finite()

        # Traced once each, without autograph (as Keras traces its own step): tracing is most of their cost.
        options = dict(reduce_retracing=True, autograph=False)
        self.grad_fn = tf.function(step_gradients, **options)  # (x, y, sw) -> loss, a gradient norm per weight
        self._modes_fn = tf.function(modes, **options)
        self._before_fn = tf.function(before_step, **options)
        self._after_fn = tf.function(after_step, **options)
        self.finite_fn = tf.function(finite, **options)  # whether every float variable is finite

    # ------------------------------------------------------------------ every step

    def due(self) -> bool:
        """Whether the next step is measured."""
        if self.diverged:
            return False
        return self.last_measured is None or self.steps + 1 - self.last_measured >= self.every

    def take_before(self) -> bool:
        """Before a measured step: the kernels as the step will find them; whether the weights are finite."""
        finite, self._before = self._before_fn()
        return bool(finite)

    def measure(self, step: int, epoch: int) -> bool:
        """After a measured step: the fixed batch's loss and gradients, the update ratios; whether the
        weights the step left behind are finite."""
        run = self.run
        x, y, sw = self._fixed_tensors
        loss, norms, ratios, finite = self._after_fn(x, y, sw, self._before)
        self._before = None
        loss = float(loss)
        norms = np.asarray(norms, dtype=np.float64)
        rate = self.rate()
        run.learning_rate = rate
        run.losses.append(loss)
        run.steps.append(step)
        run.epochs.append(epoch)
        run.rates.append(rate)
        record_norms(run, norms, np.asarray(ratios, dtype=np.float64), self.trainable, self.owners,
                     self.layer_order, self._kernel_owners)
        self._measurements += 1
        if self.board is not None:
            self.board.measurement(step, loss, rate, run, self.layer_order, self._kernel_owners)
        return bool(finite)

    def measured(self, step: int) -> bool:
        """Count a due step as measured (or tried); whether the activations and the rules are due too."""
        self.last_measured = step
        self._due_steps += 1
        return self._due_steps % EVALUATE_EVERY == 0

    def time_step(self, entered: float, ran: float, spent: float, due: bool):
        """Account a step's time: Keras's (`ran`), the monitor's (`spent`), since the last (`entered`)."""
        if due:
            self._adapt_every(spent)
        elif self._last_entry is not None:
            # The time between steps without the monitor's work: what a plain fit would take.
            self._step_times.append(max(entered - self._last_entry - self._last_spent, ran))
        self._last_entry, self._last_spent = entered, spent
        self.seconds += spent

    def _adapt_every(self, spent: float):
        """Measure as often as the overhead allows: a measurement's cost over OVERHEAD of a step's.

        The first measurement traces the functions and is not counted; the state copies, the
        activation statistics and the rules every tenth measurement are.
        """
        self._timed_measurements += 1
        if self._timed_measurements > 1:
            self._timed_seconds += spent
        if not self.auto_every or self._timed_measurements < 2 or len(self._step_times) < 3:
            return
        per_measurement = self._timed_seconds / (self._timed_measurements - 1)
        step = float(np.median(self._step_times))
        if step > 0:
            self.every = int(min(MAX_EVERY, max(1, math.ceil(per_measurement / (OVERHEAD * step)))))
            self.run.every = self.every

    def measure_activations(self):
        if self.fixed is None or self.diverged:
            return
        # An eager pass with every layer's output recorded: taken first when it can be, then only while
        # these passes have cost under ACTIVATIONS_SHARE of the training time so far.
        if self._activations is not None and \
                self._activation_seconds > ACTIVATIONS_SHARE * (time.perf_counter() - self._started):
            return
        start = time.perf_counter()
        x = self.fixed[0]
        flat = [np.asarray(a) for a in tf.nest.flatten(x)]
        feed = _Feed(self.model, x)
        sample = Sample(flat, None, False, self.run.batch_source)
        n = len(flat[0])
        self._activations = activation_stats(feed, sample, self.paths, n, n)
        self.results.activations = self._activations
        self._activation_seconds += time.perf_counter() - start
        if self.board is not None and self._activations:
            self.board.activations(self.steps, self._activations)

    def epoch_end(self, epoch: int, logs: dict):
        loss, val = number(logs.get("loss")), number(logs.get("val_loss"))
        self.run.epoch_losses.append({"epoch": epoch, "steps": self.steps, "loss": loss, "val_loss": val,
                                      "learning_rate": self.rate()})
        if not self.diverged and self.fixed is not None:
            if self.run.mode_layers and self._has_loss and not self._own_step and self.no_modes is None:
                try:
                    training, inference = self._modes_fn(*self._fixed_tensors)
                    self.run.mode_gaps.append({"epoch": epoch, "step": self.steps, "training": float(training),
                                               "inference": float(inference)})
                except Exception as exc:
                    if os.environ.get("KERASCHECK_DEBUG"):
                        raise

                    self.no_modes = error_line(exc)
            self.measure_activations()
        if self.board is not None:
            self.board.epoch(self.steps, loss, val, self.trainable)

    def rate(self) -> float:
        """The learning rate in force (NaN without an optimizer or one that cannot be read)."""
        opt = self.model.optimizer
        if opt is None:
            return float("nan")
        try:
            return float(keras.ops.convert_to_numpy(opt.learning_rate))
        except Exception:
            return float("nan")


class _Feed:
    """The model called on a flat list of inputs, packed as the fixed batch came (the probes' ModelIO, for it)."""
    def __init__(self, model, structure):
        self.model, self.structure = model, structure

    def __call__(self, xs: list, training: bool = False) -> list:
        packed = tf.nest.pack_sequence_as(self.structure, list(xs))
        out = self.model(packed, training=training) if self.model._call_has_training_arg else self.model(packed)
        return tf.nest.flatten(out)


# ------------------------------------------------------------------ batches and values (replay.py uses them too)


def unique(variables: list) -> list:
    """The variables, each once, in order."""
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def loss_tensor(logs):
    """The loss in the logs a train function returned (None if it has none)."""
    if isinstance(logs, dict):
        if "loss" in logs:
            return logs["loss"]
        for key, value in logs.items():
            if "loss" in key:
                return value
    return None


def number(value) -> float | None:
    if value is None:
        return None
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return None


def local_batch(data, strategy):
    """A batch as one set of tensors (the replicas' shares joined) from what the iterator gave."""
    def join(v):
        if isinstance(v, tf.distribute.DistributedValues):
            parts = strategy.experimental_local_results(v)
            return tf.concat(list(parts), axis=0) if len(parts) > 1 else parts[0]
        return v

    return tf.nest.map_structure(join, data)


def as_numpy(data):
    return tf.nest.map_structure(lambda v: None if v is None else np.asarray(v), data)


def as_tensors(data):
    return tf.nest.map_structure(lambda v: None if v is None else tf.convert_to_tensor(v), data)


def unpack(data) -> tuple:
    x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
    return x, y, sw


def is_float(v) -> bool:
    return "float" in str(v.dtype)


# ------------------------------------------------------------------ private helpers


def _overrides_train_step(model) -> bool:
    own = type(model).train_step
    return own is not keras.Model.train_step


def _mode_layers(model, paths: dict) -> list:
    """Layers that compute differently in training and in inference, with what sets how much."""
    names = {id(layer): path for path, layer in paths.values()}
    out = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        name = names.get(id(layer), layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            out.append({"layer": name, "class_name": type(layer).__name__, "momentum": float(layer.momentum)})
        elif isinstance(layer, (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.GaussianNoise,
                                keras.layers.AlphaDropout)):
            out.append({"layer": name, "class_name": type(layer).__name__,
                        "rate": float(getattr(layer, "rate", getattr(layer, "stddev", 0.0)))})
    return out


def _device(model) -> str:
    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    devices = [getattr(v, "device", "") or "" for v in model.variables[:1]]
    kind = "GPU" if any("GPU" in d.upper() for d in devices) else "CPU"
    if replicas > 1:
        return f"{replicas} {kind} replicas ({type(strategy).__name__})"
    return kind


def _loss_name(model) -> str:
    loss = getattr(model, "loss", None)
    if loss is None:
        return "its own train_step" if _overrides_train_step(model) else "the losses its layers add"
    if isinstance(loss, str):
        return loss
    return getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__


def _planned(params) -> int:
    params = params or {}
    epochs, steps = params.get("epochs"), params.get("steps")
    return int(epochs * steps) if epochs and steps else 0


def _first_element(data):
    if hasattr(data, "take") and hasattr(data, "element_spec"):  # a tf.data.Dataset: its first element
        return next(iter(data.take(1)))
    if isinstance(data, list):
        data = tuple(data)
    return data
