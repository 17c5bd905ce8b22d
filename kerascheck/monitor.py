"""kerascheck.Monitor: kerascheck's rules on the real training run, as `model.fit` runs it.

    model.fit(x, y, epochs=20, callbacks=[kerascheck.Monitor(report="training.html")])

The probes replay a few hundred steps on a sample; the run that goes wrong is the
user's own. The monitor measures that run and hands what it measured to the same rule
modules the probes feed, as a ProbeResults whose training run is the live one:

* every step: the loss Keras reports, so a NaN/Inf is caught at the step it appears;
* every `every` steps, on a fixed batch (`data`, or the first training batch): the
  loss and the gradient norm of every weight (with the model's compiled loss, or
  through its own train_step with the optimizer's update held back), and the
  update/weight ratio of every kernel over the real training step just taken;
* every tenth measurement and at each epoch's end: dead and saturated units
  (kerascheck.probe.measure.activation_stats on the fixed batch);
* at each epoch's end: the loss, the validation loss and the learning rate in force
  (read from the optimizer, so schedules and ReduceLROnPlateau count), and for models
  with BatchNormalization or Dropout the fixed batch's loss in training and in
  inference mode.

To keep the batch that broke a run, the monitor takes each batch from Keras's
iterator itself and hands it to Keras's own compiled step (the path Keras takes for
batches that come as a Python iterable); at each measurement it copies the weights,
the optimizer's state and the metrics to host memory. When the loss turns
non-finite it replays from that copy over the batches since, finds the step and the
first layer whose activations, gradients or weights went non-finite, keeps the last
finite state and that batch (`monitor.last_finite`), and puts the run back exactly
as it was.

The rules' `facts.spec` comes from a copy of the model saved to a temporary .keras
file when training begins, read by kerascheck.reader.open_spec as any file is: the
configuration, the compile settings and the weights training started from. Spec
weights are judged once; later evaluations see the spec without its weights.

Nothing the monitor measures changes the run: the state a measurement touches
(BatchNormalization statistics, random-generator states, metrics) is restored, and
any failure of the monitor's own code is recorded in the report and switches the
monitor off, never the training.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import deque
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import keras
import numpy as np
import tensorflow as tf

from kerascheck.probe import ProbeResults
from kerascheck.probe.train import TrainRun, record_norms
from kerascheck.rule import SEVERITIES, SEVERITY_RANK, Facts, Skip

__all__ = ["Monitor", "LiveRun", "LiveResults", "LastFinite", "LIVE_RULES"]

# The rules that judge a training run. The others judge a saved file, the graph of custom
# code, or probes of their own (10 examples overfitted, batch size 1); the monitor lists
# them as skipped, with kerascheck.check(model) as the way to run them.
LIVE_RULES = ("nan-in-training", "exploding-gradients", "vanishing-gradients", "dead-units", "unhealthy-weights",
              "missing-rnn-clipping", "no-lr-schedule", "nonfinite-data", "stalled-loss", "train-inference-gap")
# The rules that read measurements on the fixed batch.
BATCH_RULES = ("exploding-gradients", "vanishing-gradients", "dead-units", "train-inference-gap")
OVERHEAD = 0.04  # the share of training time automatic `every` lets the measurements take
FIRST_EVERY = 10  # automatic `every` until a measurement and a step have been timed
MAX_EVERY = 1000
EVALUATE_EVERY = 10  # measurements between activation statistics and rule evaluations
FIXED_EXAMPLES = 32  # of the first training batch, when no data= is given: a measurement costs about one step on it
ACTIVATIONS_SHARE = 0.01  # of the training time, for the eager passes that record every layer's output
KEPT_BATCH_BYTES = 256 << 20  # batches held for a replay; past this a fresh copy of the state is taken
TAG = re.compile(r"[^A-Za-z0-9_.\-/]")


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


@dataclass
class LastFinite:
    """The state just before the step that broke training, and that step's batch: enough to replay it.

        monitor.last_finite.restore()  # weights, optimizer state as they were before the step
        model.train_on_batch(*monitor.last_finite.batch)  # the same step again
    """

    step: int  # 1-based, counted from the start of the fit
    epoch: int
    learning_rate: float
    weights: list  # numpy values of model.variables, in that order
    optimizer_variables: list  # numpy values of model.optimizer.variables
    batch: tuple  # (x, y, sample_weight) as numpy, nested as the data came
    layer: str | None = None
    where: str | None = None
    model: object = field(default=None, repr=False)

    def restore(self, model=None) -> None:
        model = model if model is not None else self.model
        for v, value in zip(model.variables, self.weights):
            v.assign(value)
        for v, value in zip(model.optimizer.variables, self.optimizer_variables):
            v.assign(value)


class Monitor(keras.callbacks.Callback):
    """A Keras callback that runs kerascheck's rules on the training run it watches.

    every: steps between measurements on the fixed batch; None picks it so that the
        measurements take about 4% of the training time (at least every step, at most
        every 1000th), re-estimated as training goes.
    data: the fixed batch, (x, y), (x, y, sample_weight), x alone, or a tf.data.Dataset
        (its first element); None takes the first training batch.
    stop_on: "error", "warning" or "info": stop training when a finding at least this
        severe appears (None: never).
    report: a path for the HTML report, written when training ends or stops.
    log_dir: a TensorBoard log folder for per-layer gradient norms, update/weight ratios,
        dead and saturated fractions (scalars) and weight histograms.
    select, ignore: rule names, codes or code prefixes, as on the command line.
    verbose: 1 prints each finding when it first appears and the report at the end;
        0 prints nothing.

    After training, `monitor.report` is the Report the command line and
    `kerascheck.check()` produce (`.findings`, `.to_json()`), `monitor.last_finite`
    the state and batch just before a step that turned training non-finite.
    """

    def __init__(self, every: int | None = None, data=None, stop_on: str | None = None, report=None,
                 log_dir=None, select=(), ignore=(), verbose: int = 1):
        super().__init__()
        from kerascheck.engine import select_rules

        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"kerascheck.Monitor needs Keras's TensorFlow backend (this is "
                             f"{keras.backend.backend()!r})")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be a positive number of steps or None, not {every!r}")
        if stop_on is not None and stop_on not in SEVERITIES:
            raise ValueError(f"stop_on must be one of {', '.join(SEVERITIES)} or None, not {stop_on!r}")
        self.every, self.data, self.stop_on = every, data, stop_on
        self.report_path = os.fspath(report) if report is not None else None
        self.log_dir = os.fspath(log_dir) if log_dir is not None else None
        self.verbose = int(verbose)
        self.rules = select_rules(_keys(select), _keys(ignore), live=True)
        self.report = None
        self.last_finite: LastFinite | None = None
        self.stopped_at: dict | None = None
        self._original = None
        self._active = False

    # ------------------------------------------------------------------ Keras hooks

    def on_train_begin(self, logs=None):
        self._reset()
        with _quiet():
            try:
                self._setup()
            except Exception as exc:
                self._fail("setting up", exc)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._in_epoch = True
        self._epoch_start = self._steps

    def on_train_batch_begin(self, batch, logs=None):
        # The train function below runs only while a fit that holds this monitor calls it.
        self._armed = True
        self._batch_begin = batch

    def on_epoch_end(self, epoch, logs=None):
        self._in_epoch = False
        if not self._active or not self._ready:
            return
        with _quiet():
            try:
                self._epoch_end(epoch + 1, dict(logs or {}))
            except Exception as exc:
                self._fail("measuring at the end of an epoch", exc)

    def on_train_end(self, logs=None):
        self._in_epoch = False
        with _quiet():
            try:
                if self._active and self._ready:
                    self._check_pending()
                    self._evaluate(final=True)
            except Exception as exc:
                self._fail("judging the run", exc)
            try:
                self._finish()
            except Exception as exc:
                self._fail("writing the report", exc)
            finally:
                self._uninstall()
                self._close()
        if self.verbose and self.report is not None:
            from kerascheck.reports.text import render_text

            color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
            self._print(render_text(self.report, color=color).rstrip("\n"))
            if self.report_path and os.path.exists(self.report_path):
                self._print(f"HTML report: {self.report_path}")

    # ------------------------------------------------------------------ set-up

    def _reset(self):
        self.report, self.last_finite, self.stopped_at = None, None, None
        self._active = False
        self._armed = False
        self._epoch, self._in_epoch = 1, False
        self._steps = 0  # steps run in this fit
        self._epoch_start, self._batch_begin = 0, 0
        self._seen: dict = {}  # finding key -> Finding, first appearance, stamped with step and epoch
        self._judged: set = set()
        self._skip_reasons: dict = {}
        self._errors: list = []
        self._spec = None
        self._spec_view = None
        self._stack = contextlib.ExitStack()
        self._tmp = None
        self._writer = None
        self._fixed = None
        self._activations = None
        self._bad_batch = None
        self._pending = None
        self._measurements = 0
        self._due_steps = 0
        self._last_measured = None
        self._snapshot = None
        self._kept: list = []
        self._kept_bytes = 0
        self._before = None
        self._step_times: deque = deque(maxlen=64)
        self._monitor_seconds = 0.0
        self._activation_seconds = 0.0
        self._started = time.perf_counter()
        self._timed_seconds = 0.0
        self._timed_measurements = 0
        self._last_entry, self._last_spent = None, 0.0
        self._diverged = False
        self._weights_judged = False
        self._no_gradients = None
        self._no_modes = None
        self._no_batch = None
        self._ready = False
        self._run = None
        self.results = None

    def _setup(self):
        model = self.model
        self._strategy = model.distribute_strategy
        self._every = self.every or FIRST_EVERY
        self._live_rules = [r for r in self.rules if r.name in LIVE_RULES]
        if self.log_dir:
            self._writer = _Board(self.log_dir)
        self._original = model.train_function
        self._intercept = getattr(model, "steps_per_execution", 1) == 1
        model.train_function = self._train_function
        self._active = True
        if model.variables:
            self._setup_model()
        # else a subclassed model Keras builds in its first step: set up after that step.

    def _setup_model(self):
        """What needs the model's variables: the measurements, the results the rules read, the spec."""
        from kerascheck.modelio import layer_paths, variable_owners

        model = self.model
        self._paths = layer_paths(model)
        self._owners = variable_owners(model, self._paths)
        self._trainable = list(model.trainable_variables)
        self._kernels = [v for v in self._trainable if len(v.shape) >= 2]
        self._kernel_owners = [self._owners.get(id(v), "?") for v in self._kernels]
        self._layer_order = list(dict.fromkeys(self._owners.get(id(v), "?") for v in self._trainable))
        self._own_step = _overrides_train_step(model)
        self._has_loss = getattr(model, "_compile_loss", None) is not None
        opt = model.optimizer
        rate = self._rate()
        self._run = LiveRun(learning_rate=rate, steps_planned=_planned(self.params), every=self._every,
                            auto_every=self.every is None, optimizer=type(opt).__name__ if opt is not None else "",
                            trainable_parameters=int(sum(int(np.prod(v.shape)) for v in self._trainable)),
                            mode_layers=_mode_layers(model, self._paths))
        self._run.layer_norms = {name: [] for name in self._layer_order}
        if not self._intercept:
            self._run.replay = (f"steps_per_execution={model.steps_per_execution}: Keras takes the batches inside "
                                "its compiled loop, so the monitor cannot keep the one that broke training")
            if self.data is None:
                self._no_batch = (f"with steps_per_execution={model.steps_per_execution} Keras takes the batches "
                                  "inside its compiled loop: pass kerascheck.Monitor(data=(x, y)) for the monitor to "
                                  "measure on")
        self.results = LiveResults(
            device=_device(model), synthetic=False, data_description="the training run", defaults=[],
            loss_name=_loss_name(model), task="unknown", learning_rate=rate, live=self._run, train=self._run,
            notes=["measured by kerascheck.Monitor during model.fit"], layer_order=list(self._layer_order))
        for v in self._trainable:
            name = self._owners.get(id(v), "?")
            size = int(np.prod(v.shape))
            self.results.layer_params[name] = self.results.layer_params.get(name, 0) + size
            if len(v.shape) >= 2:
                self.results.kernel_params[name] = self.results.kernel_params.get(name, 0) + size
        self._build_functions()
        self._read_spec()
        if self.data is not None:
            self._set_fixed(_first_element(self.data), "given as data=")
        self._ready = True

    def _read_spec(self):
        from kerascheck.engine import _with_live_classes
        from kerascheck.reader import open_spec

        self._tmp = tempfile.mkdtemp(prefix="kerascheck-monitor-")
        path = os.path.join(self._tmp, f"{_safe_name(self.model.name)}.keras")
        try:
            self.model.save(path)
            spec = self._stack.enter_context(open_spec(path))
        except Exception as exc:
            from kerascheck.modelio import error_line

            self._errors.append({"message": f"kerascheck could not save a copy of the model to read its "
                                            f"configuration ({error_line(exc)}); the rules that read it did not run"})
            self._spec = None
            return
        self._spec = _with_live_classes(spec, SimpleNamespace(paths=self._paths))
        self._spec_view = replace(self._spec, layers=tuple(replace(l, weights=()) for l in self._spec.layers))

    def _build_functions(self):
        model, trainable, kernels = self.model, self._trainable, self._kernels

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
            protect = _unique(list(model.non_trainable_variables) + list(model.metrics_variables))
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
            checked = [v for v in list(model.variables) if _is_float(v)]
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
        self._grad_fn = tf.function(step_gradients, **options)
        self._modes_fn = tf.function(modes, **options)
        self._before_fn = tf.function(before_step, **options)
        self._after_fn = tf.function(after_step, **options)
        self._finite_fn = tf.function(finite, **options)

    # ------------------------------------------------------------------ every step

    def _train_function(self, iterator):
        original = self._original
        if not self._armed:
            # Called by a fit this monitor is not part of (one that raised before on_train_end,
            # then a new fit): hand the model its own function back.
            self._uninstall()
            return original(iterator)
        self._armed = False
        if not self._active:
            return original(iterator)
        entered = time.perf_counter()
        data = None
        if self._intercept and isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            data = next(iterator)  # StopIteration ends the epoch, as Keras's own function does
        ready = self._ready
        due = ready and self._due()
        spent = self._guard("preparing a measurement", lambda: self._prepare(data, due)) if ready else 0.0
        start = time.perf_counter()
        logs = original([data]) if data is not None else original(iterator)
        loss = _loss_tensor(logs)
        synchronous = self.stop_on is not None or due or not ready
        if synchronous:
            loss = float(loss) if loss is not None else None
        ran = time.perf_counter() - start
        if data is not None:
            self._steps += 1
        else:  # Keras ran up to steps_per_execution steps in one call
            execution = int(getattr(self.model, "steps_per_execution", 1) or 1)
            left = (self.params or {}).get("steps")
            left = execution if not left else min(execution, left - self._batch_begin)
            self._steps = self._epoch_start + self._batch_begin + max(left, 1)
        if not ready:
            spent += self._guard("setting up", lambda: self._setup_late(data))
        spent += self._guard("measuring", lambda: self._after(loss, due, synchronous)) if self._ready else 0.0
        if due:
            self._adapt_every(spent)
        elif self._last_entry is not None:
            # The time between steps without the monitor's work: what a plain fit would take.
            self._step_times.append(max(entered - self._last_entry - self._last_spent, ran))
        self._last_entry, self._last_spent = entered, spent
        self._monitor_seconds += spent
        return logs

    def _setup_late(self, data):
        """A model Keras built in the first step: set up now; the first step is watched for its loss only."""
        self._setup_model()
        if data is not None and self._fixed is None:
            self._set_fixed(_local(data, self._strategy), "the first training batch", FIXED_EXAMPLES)

    def _guard(self, what: str, fn) -> float:
        start = time.perf_counter()
        if self._active:
            with _quiet():
                try:
                    fn()
                except Exception as exc:
                    self._fail(what, exc)
        return time.perf_counter() - start

    def _due(self) -> bool:
        if self._diverged:
            return False
        return self._last_measured is None or self._steps + 1 - self._last_measured >= self._every

    def _prepare(self, data, due: bool):
        if data is not None and self._fixed is None:
            self._set_fixed(_local(data, self._strategy), "the first training batch", FIXED_EXAMPLES)
        if due:
            self._check_pending()  # a divergence in the step before must be found before its state is copied over
            if self._diverged:
                return
            finite, self._before = self._before_fn()
            if not bool(finite):
                # Weights went non-finite since the last measurement while the loss stayed finite
                # (a ReLU swallows NaN in a compiled step): keep the last finite copy for the replay.
                self._divergence(self._steps, self._epoch, "weights")
                return
            if data is not None:
                self._snapshot = {"step": self._steps + 1, "epoch": self._epoch, "state": self._capture()}
                self._kept, self._kept_bytes = [], 0
        if data is not None and self._snapshot is not None and not self._diverged:
            self._kept.append((self._steps + 1, self._epoch, data))
            self._kept_bytes += _nbytes(data)
            if self._kept_bytes > KEPT_BATCH_BYTES:
                self._last_measured = None  # measure (and copy the state) at the next step

    def _after(self, loss, due: bool, synchronous: bool):
        step, epoch = self._steps, self._epoch
        if synchronous:
            self._check_pending()
            self._check_loss(loss, step, epoch)
        else:
            self._check_pending()
            self._pending = (loss, step, epoch)  # read at the next step, once the device has moved on
        if due and not self._diverged and self._fixed is not None and self._no_gradients is None:
            try:
                self._measure(step, epoch)
            except Exception as exc:
                # The model's own step cannot be measured here: the loss, the weights and the
                # activations are still watched; the rules that need gradients say why they did not run.
                if os.environ.get("KERASCHECK_DEBUG"):
                    raise
                from kerascheck.modelio import error_line

                self._no_gradients = error_line(exc)
            self._last_measured = step
            self._due_steps += 1
            if self._due_steps % EVALUATE_EVERY == 0:
                self._measure_activations()
                self._evaluate()

    def _check_pending(self):
        if self._pending is not None:
            loss, step, epoch = self._pending
            self._pending = None
            self._check_loss(float(loss) if loss is not None else None, step, epoch)

    def _check_loss(self, loss, step: int, epoch: int):
        if loss is None or self._diverged:
            return
        if not math.isfinite(loss):
            self._divergence(step, epoch, "nan")

    # ------------------------------------------------------------------ measurements

    def _measure(self, step: int, epoch: int):
        run = self._run
        x, y, sw = self._fixed_tensors
        loss, norms, ratios, finite = self._after_fn(x, y, sw, self._before)
        self._before = None
        loss = float(loss)
        norms = np.asarray(norms, dtype=np.float64)
        rate = self._rate()
        run.learning_rate = rate
        run.losses.append(loss)
        run.steps.append(step)
        run.epochs.append(epoch)
        run.rates.append(rate)
        record_norms(run, norms, np.asarray(ratios, dtype=np.float64), self._trainable, self._owners,
                     self._layer_order, self._kernel_owners)
        self._measurements += 1
        if self._writer is not None:
            self._log_scalars(step, loss, rate, run)
        if not bool(finite):
            # The weights this step left behind are non-finite, whatever the loss Keras logged. (A fixed
            # batch that overflows on finite weights is measured, not a divergence: training's own loss
            # tells, at this step or the next.)
            self._divergence(step, epoch, "weights")

    def _adapt_every(self, spent: float):
        """Measure as often as the overhead allows: a measurement's cost over OVERHEAD of a step's.

        The first measurement traces the functions and is not counted; the state copies, the
        activation statistics and the rules every tenth measurement are.
        """
        self._timed_measurements += 1
        if self._timed_measurements > 1:
            self._timed_seconds += spent
        if self.every is not None or self._timed_measurements < 2 or len(self._step_times) < 3:
            return
        per_measurement = self._timed_seconds / (self._timed_measurements - 1)
        step = float(np.median(self._step_times))
        if step > 0:
            self._every = int(min(MAX_EVERY, max(1, math.ceil(per_measurement / (OVERHEAD * step)))))
            self._run.every = self._every

    def _measure_activations(self):
        from kerascheck.probe.data import Sample
        from kerascheck.probe.measure import activation_stats

        if self._fixed is None or self._diverged:
            return
        # An eager pass with every layer's output recorded: taken first when it can be, then only while
        # these passes have cost under ACTIVATIONS_SHARE of the training time so far.
        if self._activations is not None and \
                self._activation_seconds > ACTIVATIONS_SHARE * (time.perf_counter() - self._started):
            return
        start = time.perf_counter()
        x = self._fixed[0]
        flat = [np.asarray(a) for a in tf.nest.flatten(x)]
        feed = _Feed(self.model, x)
        sample = Sample(flat, None, False, self._run.batch_source)
        n = len(flat[0])
        self._activations = activation_stats(feed, sample, self._paths, n, n)
        self.results.activations = self._activations
        self._activation_seconds += time.perf_counter() - start
        if self._writer is not None and self._activations:
            self._writer.scalars(self._steps, {
                f"{'dead_fraction' if 'dead_share' in st else 'saturated_fraction'}/{layer}":
                    st.get("dead_share", st.get("saturated_share", 0.0)) for layer, st in self._activations.items()})

    def _log_scalars(self, step, loss, rate, run):
        values = {"loss/fixed_batch": loss, "learning_rate": rate, "gradient_norm/global": run.global_norms[-1]}
        values.update({f"gradient_norm/{name}": run.layer_norms[name][-1] for name in self._layer_order})
        values.update({f"update_ratio/{name}": run.update_ratios[name][-1]
                       for name in dict.fromkeys(self._kernel_owners) if run.update_ratios.get(name)})
        self._writer.scalars(step, values)

    def _epoch_end(self, epoch: int, logs: dict):
        self._check_pending()
        loss, val = _number(logs.get("loss")), _number(logs.get("val_loss"))
        self._run.epoch_losses.append({"epoch": epoch, "steps": self._steps, "loss": loss, "val_loss": val,
                                       "learning_rate": self._rate()})
        if not self._diverged and self._fixed is not None:
            if self._run.mode_layers and self._has_loss and not self._own_step and self._no_modes is None:
                try:
                    training, inference = self._modes_fn(*self._fixed_tensors)
                    self._run.mode_gaps.append({"epoch": epoch, "step": self._steps, "training": float(training),
                                                "inference": float(inference)})
                except Exception as exc:
                    if os.environ.get("KERASCHECK_DEBUG"):
                        raise
                    from kerascheck.modelio import error_line

                    self._no_modes = error_line(exc)
            self._measure_activations()
        if self._writer is not None:
            self._writer.scalars(self._steps, {k: v for k, v in (("loss/epoch", loss), ("loss/validation", val))
                                               if v is not None})
            self._writer.histograms(self._steps, {f"weights/{v.path}": v.numpy() for v in self._trainable})
            self._writer.flush()
        self._evaluate()

    # ------------------------------------------------------------------ divergence

    def _divergence(self, step: int, epoch: int, why: str):
        """Training went non-finite at `step` (why: "nan" in the loss, or "weights"): replay, localise, judge.

        A finite blow-up is not a divergence here: the exploding-gradients and stalled-loss rules
        judge it, and training is stopped only when the user asks for it.
        """
        self._diverged = True
        run = self._run
        run.diverged_at, run.why = step - 1, why
        run.diverged_step, run.diverged_epoch = step, epoch
        rate = self._rate()
        current = self._capture()
        try:
            found = self._replay(step) if self._snapshot is not None else None
        finally:
            self._put_back(current)
            self._kept, self._snapshot = [], None  # measuring stops here; nothing more to replay
        if found is not None:
            step, epoch = found["step"], found["epoch"]
            run.diverged_at, run.diverged_step, run.diverged_epoch = step - 1, step, epoch
            rate = found.pop("learning_rate")
            self.results.nan_layer = found if found.get("layer") else None
        run.learning_rate = rate
        self._evaluate()

    def _replay(self, step: int) -> dict | None:
        """From the last copy of the state, the kept batches again, step by step, until one breaks."""
        snap = self._snapshot
        self._put_back(snap["state"])
        for j, epoch, data in self._kept:
            if j > step:
                break
            before = self._capture()
            logs = self._original([data])
            loss = _number(_loss_tensor(logs))
            broke = (loss is not None and not math.isfinite(loss)) or not bool(self._finite_fn())
            if not broke:
                continue
            self._put_back(before)
            found = self._localise(data, j, epoch)
            self._put_back(before)
            rate = self._rate()
            batch = _numpy(_local(data, self._strategy))
            values = {id(v): a for v, a in zip(*before)}
            opt = self.model.optimizer
            self.last_finite = LastFinite(step=j, epoch=epoch, learning_rate=rate,
                                          weights=[values[id(v)] for v in self.model.variables],
                                          optimizer_variables=[values[id(v)] for v in opt.variables] if opt else [],
                                          batch=_unpack(batch), layer=found.get("layer"), where=found.get("where"),
                                          model=self.model)
            self._bad_batch = _raw_batch(batch, j, epoch)
            count = j - snap["step"] + 1
            self._run.replay = (f"replayed from the state before step {snap['step']} over {count} "
                                f"batch{'es' if count != 1 else ''}")
            return {**found, "step": j, "epoch": epoch, "learning_rate": rate}
        self._run.replay = (f"replaying from the state before step {snap['step']} to step {step} did not turn the "
                            "loss or the weights non-finite again (non-deterministic kernels)")
        return None

    def _localise(self, data, step: int, epoch: int) -> dict:
        """Where the first non-finite value arises in the step: activations, then gradients, then the update."""
        from kerascheck.modelio import Tap
        from kerascheck.probe.measure import first_nonfinite

        x, y, sw = _unpack(_local(data, self._strategy))
        found: dict = {"layer": None, "where": None}
        layers = {id(layer): path for path, layer in self._paths.values()}
        with Tap(layers) as tap:
            try:
                self.model(x, training=True) if self.model._call_has_training_arg else self.model(x)
            except Exception:
                pass
        first = first_nonfinite(tap)
        if first is not None:
            return {"layer": first[0], "where": "activations", "nonfinite": first[1]}
        _, norms = self._grad_fn(*_tensors((x, y, sw)))
        norms = np.asarray(norms, dtype=np.float64)
        # Gradients flow from the output back: a non-finite value born in one layer's backward
        # pass reaches every layer before it, so the origin is the one nearest the output.
        for v, n in zip(self._trainable, norms):
            if not math.isfinite(n):
                found = {"layer": self._owners.get(id(v), "?"), "where": "gradients"}
        if found["layer"] is not None:
            return found
        self._original([data])
        for v in self.model.variables:
            if _is_float(v) and not np.all(np.isfinite(np.asarray(v.numpy(), dtype=np.float64))):
                return {"layer": self._owners.get(id(v), "?"), "where": "weights after the update"}
        return found

    def _capture(self) -> tuple:
        """Everything a step changes, copied to host memory: weights, optimizer state (Keras builds
        the optimizer's slots in the first step, so the list is read each time), metrics."""
        opt = self.model.optimizer
        state = _unique(list(self.model.variables) + list(opt.variables if opt is not None else [])
                        + list(self.model.metrics_variables))
        return state, [np.array(v.numpy()) for v in state]

    def _put_back(self, copy: tuple) -> None:
        for v, value in zip(*copy):
            v.assign(value)

    # ------------------------------------------------------------------ judging

    def _evaluate(self, final: bool = False):
        from kerascheck.diagnosis import fold

        run = self._run
        run.finished = final
        run.steps_run = self._steps
        self.results.seconds = self._monitor_seconds
        self.results.data_description = self._describe()
        # The weights training started from are judged once; later evaluations see the spec without them.
        spec = self._spec_view if self._weights_judged else self._spec
        self._weights_judged = spec is not None
        facts = Facts(spec=spec if spec is not None else _NO_SPEC, model=self.model, data=self._bad_batch,
                      probe=self.results)
        step, epoch = self._steps, self._epoch
        new = []
        for rule in self._live_rules:
            if rule.name == "nonfinite-data" and self._bad_batch is None:
                continue  # the batches are read only when one breaks the loss
            if self._no_batch is not None and rule.name in BATCH_RULES:
                self._skip_reasons[rule.name] = f"no fixed batch to measure on: {self._no_batch}"
                continue
            if self._no_gradients is not None and rule.name in ("exploding-gradients", "vanishing-gradients"):
                self._skip_reasons[rule.name] = f"the monitor could not measure gradients: {self._no_gradients}"
                continue
            if self._no_modes is not None and rule.name == "train-inference-gap":
                self._skip_reasons[rule.name] = ("the monitor could not score the fixed batch in training and "
                                                 f"inference mode: {self._no_modes}")
                continue
            if spec is None and rule.tier == "spec":
                self._skip_reasons[rule.name] = "no copy of the model could be saved to read its configuration"
                continue
            try:
                found = list(rule.check(facts))
            except Skip as exc:
                self._skip_reasons[rule.name] = str(exc)
                continue
            except Exception as exc:
                if os.environ.get("KERASCHECK_DEBUG"):
                    raise
                where = traceback.extract_tb(exc.__traceback__)[-1]
                self._errors.append({"message": f"internal error in rule {rule.name} ({type(exc).__name__}: {exc} "
                                                f"at {os.path.basename(where.filename)}:{where.lineno}); please "
                                                "report it"})
                continue
            self._judged.add(rule.name)
            for f in found:
                key = _key(f)
                if key not in self._seen:
                    f = replace(f, evidence={"step": step, "epoch": epoch, **f.evidence})
                    self._seen[key] = f
                    new.append(key)
        if not new:
            return
        roots = {_key(f): f for f in fold(list(self._seen.values()), self._layer_order)}
        announced = [roots[k] for k in new if k in roots]
        for f in announced:
            self._announce(f)
        if self.stop_on is not None and self.stopped_at is None:
            worst = [f for f in announced if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[self.stop_on]]
            if worst:
                f = worst[0]
                self.stopped_at = {"step": f.evidence.get("step"), "epoch": f.evidence.get("epoch"), "rule": f.rule,
                                   "layer": f.layer}
                self.model.stop_training = True
                self._print(f"kerascheck: stopping training at step {f.evidence.get('step')} (stop_on="
                            f"{self.stop_on!r}): {f.rule}")

    def _describe(self) -> str:
        run = self._run
        epochs = len(run.epoch_losses)
        measured = len(run.losses)
        how = (f"every {run.every} steps" + (" (chosen automatically)" if run.auto_every else "")) \
            if measured > 1 else "once"
        batch = (f" on a fixed batch of {run.batch_examples} examples ({run.batch_source})"
                 if run.batch_examples else "")
        return (f"the training run ({self._steps} step{'s' if self._steps != 1 else ''}"
                + (f", {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "")
                + f"; gradients measured {measured} time{'s' if measured != 1 else ''}, {how}{batch})")

    def _announce(self, f):
        if not self.verbose:
            return
        where = f" layer '{f.layer}'" if f.layer else ""
        self._print(f"kerascheck: {f.severity} {f.code} {f.rule}{where} (step {f.evidence.get('step')}, epoch "
                    f"{f.evidence.get('epoch')}): {f.message}")

    def _print(self, text: str):
        """A line of its own above Keras's progress bar, which redraws itself below it."""
        out = sys.stdout
        prefix = ""
        if self._in_epoch and (self.params or {}).get("verbose") == 1:
            prefix = "\r\x1b[2K" if getattr(out, "isatty", lambda: False)() else "\n"
        out.write(prefix + text + "\n")
        out.flush()

    def _finish(self):
        from kerascheck.diagnosis import fold
        from kerascheck.engine import ModelResult, Report

        run = self._run
        result = ModelResult(path=f"<training of model {self.model.name!r}>", format="keras",
                             keras_version=keras.__version__)
        try:
            result.param_count = int(self.model.count_params())
        except Exception:
            result.param_count = None
        if run is not None:
            result.tiers = ["spec", "probe"] if self._spec is not None else ["probe"]
            result.probe = self.results
            findings = fold(list(self._seen.values()), self._layer_order)
            findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], not f.evidence.get("consequences"), f.code,
                                         f.layer or ""))
            result.findings = findings
        for rule in self.rules:
            if rule.name not in LIVE_RULES:
                result.skipped.append({"rule": rule.name, "reason": "it judges the saved model or a probe run of its "
                                                                    "own, not the training run: run "
                                                                    "kerascheck.check(model) for it"})
            elif rule.name not in self._judged and rule.name in self._skip_reasons:
                reason = self._skip_reasons[rule.name]
                if run is not None and run.diverged_step is not None:
                    reason = (f"training turned non-finite at step {run.diverged_step}, after "
                              f"{len(run.losses)} measurement{'s' if len(run.losses) != 1 else ''}, before there was "
                              f"enough to judge ({reason})")
                elif run is not None and "at least 10 steps" in reason:
                    reason += f" (the monitor measured {len(run.losses)}; pass every= to measure more often)"
                result.skipped.append({"rule": rule.name, "reason": reason})
        result.errors = list(self._errors)
        result.rules_total = len(self.rules)
        result.rules_run = len(self.rules) - len(result.skipped)
        if self.report_path and self._tmp is not None:
            result.layers = self._final_layers()
        self.report = Report(models=[result], rules=list(self.rules))
        if self.report_path:
            from kerascheck.reports.html import render_html

            with open(self.report_path, "w", encoding="utf-8") as fh:
                fh.write(render_html(self.report))

    def _final_layers(self) -> list:
        """Per-layer weight statistics of the model as training left it, for the HTML report."""
        from kerascheck.layerstats import layer_table
        from kerascheck.reader import open_spec

        path = os.path.join(self._tmp, "final.keras")
        try:
            self.model.save(path)
            with open_spec(path) as spec:
                return layer_table(spec)
        except Exception:
            return []

    def _fail(self, what: str, exc: BaseException):
        """The monitor's own failure: reported, and the monitor switched off; the training goes on."""
        if os.environ.get("KERASCHECK_DEBUG"):
            raise exc
        from kerascheck.modelio import error_line

        self._active = False
        self._errors.append({"message": f"kerascheck.Monitor stopped watching while {what}: {error_line(exc)}"})
        if self.verbose:
            self._print(f"kerascheck: the monitor stopped watching while {what}: {error_line(exc)}")

    def _uninstall(self):
        if self.model is not None and self._original is not None and \
                getattr(self.model, "train_function", None) == self._train_function:
            self.model.train_function = self._original
        self._active = False

    def _close(self):
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        self._stack.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._kept, self._snapshot = [], None

    # ------------------------------------------------------------------ small helpers

    def _rate(self) -> float:
        opt = self.model.optimizer
        if opt is None:
            return float("nan")
        try:
            return float(keras.ops.convert_to_numpy(opt.learning_rate))
        except Exception:
            return float("nan")

    def _set_fixed(self, batch, source: str, cap: int | None = None):
        x, y, sw = _unpack(_numpy(batch))
        if cap is not None:
            x, y, sw = tf.nest.map_structure(lambda a: None if a is None else a[:cap], (x, y, sw))
        self._fixed = (x, y, sw)
        self._fixed_tensors = _tensors(self._fixed)
        first = tf.nest.flatten(x)[0]
        self._run.batch_examples = int(np.shape(first)[0]) if np.ndim(first) else 1
        self._run.batch_source = source


class _Board:
    """TensorBoard event files written with tf.summary.write, tagged for TensorBoard's scalar and histogram
    plugins (the `tensorboard` package, which tf.summary.scalar needs, is not required to write them)."""

    def __init__(self, log_dir: str):
        from tensorflow.core.framework import summary_pb2

        def meta(plugin):
            return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))

        self.writer = tf.summary.create_file_writer(log_dir)
        self.scalar_meta, self.histogram_meta = meta("scalars"), meta("histograms")

    def scalars(self, step: int, values: dict) -> None:
        with self.writer.as_default():
            for tag, value in values.items():
                tf.summary.write(_tag(tag), tf.constant(float(value), tf.float32), step=step,
                                 metadata=self.scalar_meta)

    def histograms(self, step: int, arrays: dict, bins: int = 30) -> None:
        with self.writer.as_default():
            for tag, a in arrays.items():
                a = np.asarray(a, dtype=np.float64).ravel()
                a = a[np.isfinite(a)]
                if not a.size:
                    continue
                counts, edges = np.histogram(a, bins=bins)
                buckets = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
                tf.summary.write(_tag(tag), tf.constant(buckets, tf.float64), step=step,
                                 metadata=self.histogram_meta)

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


class _Feed:
    """The model called on a flat list of inputs, packed as the fixed batch came (the probes' ModelIO, for it)."""

    def __init__(self, model, structure):
        self.model, self.structure = model, structure

    def __call__(self, xs: list, training: bool = False) -> list:
        packed = tf.nest.pack_sequence_as(self.structure, list(xs))
        out = self.model(packed, training=training) if self.model._call_has_training_arg else self.model(packed)
        return tf.nest.flatten(out)


_NO_SPEC = SimpleNamespace(compile=None, layers=(), inputs=(), outputs=(), config={}, raw_compile=None,
                           layer=lambda name: None)


def _keys(value) -> list:
    if not value:
        return []
    if isinstance(value, str):
        value = [value]
    return [k.strip() for item in value for k in str(item).split(",") if k.strip()]


def _key(f) -> tuple:
    ev = f.evidence
    return f.rule, f.layer, str(ev.get("kind") or ev.get("kind_of_problem") or "")


def _unique(variables: list) -> list:
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


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


def _loss_tensor(logs):
    if isinstance(logs, dict):
        if "loss" in logs:
            return logs["loss"]
        for key, value in logs.items():
            if "loss" in key:
                return value
    return None


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return None


def _local(data, strategy):
    """A batch as one set of tensors (the replicas' shares joined) from what the iterator gave."""
    def join(v):
        if isinstance(v, tf.distribute.DistributedValues):
            parts = strategy.experimental_local_results(v)
            return tf.concat(list(parts), axis=0) if len(parts) > 1 else parts[0]
        return v

    return tf.nest.map_structure(join, data)


def _numpy(data):
    return tf.nest.map_structure(lambda v: None if v is None else np.asarray(v), data)


def _tensors(data):
    return tf.nest.map_structure(lambda v: None if v is None else tf.convert_to_tensor(v), data)


def _unpack(data) -> tuple:
    x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
    return x, y, sw


def _nbytes(data) -> int:
    total = 0
    for v in tf.nest.flatten(data):
        if isinstance(v, tf.distribute.DistributedValues):
            v = v.values
            total += sum(int(np.prod(p.shape)) * p.dtype.size for p in v)
        elif hasattr(v, "shape") and hasattr(v, "dtype"):
            total += int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size
    return total


def _first_element(data):
    if hasattr(data, "take") and hasattr(data, "element_spec"):  # a tf.data.Dataset: its first element
        return next(iter(data.take(1)))
    if isinstance(data, list):
        data = tuple(data)
    return data


def _raw_batch(batch, step: int, epoch: int):
    """The batch that broke training, as the data the nonfinite-data rule reads."""
    from kerascheck.probe.data import from_xy

    x, y, _ = _unpack(batch)
    raw = from_xy(f"the training batch of step {step}", x, y)
    raw.described_as = f"The training batch of step {step} (epoch {epoch})"
    return raw


def _is_float(v) -> bool:
    return "float" in str(v.dtype)


def _tag(name: str) -> str:
    return TAG.sub("_", str(name))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name or "model")[:64] or "model"


@contextlib.contextmanager
def _quiet():
    """Python warnings and TensorFlow's own log lines off while the monitor's code runs."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
