"""kerascheck.Monitor: kerascheck's rules on the real training run, as `model.fit` runs it.

    model.fit(x, y, epochs=20, callbacks=[kerascheck.Monitor(report="training.html")])

The probes replay a few hundred steps on a sample; the run that goes wrong is the
user's own. The monitor measures that run and hands what it measured to the same rule
modules the probes feed, as a ProbeResults whose training run is the live one.

The Monitor callback here takes each training step from Keras, watches its loss and
hands the work to one module per job:

* record: recording the run (the measurements on the fixed batch, the LiveRun, the
  cadence `every`, the activation statistics);
* replay: replaying the step that turned training non-finite, to find that step, the
  first non-finite layer and the last finite state (`monitor.last_finite`);
* board: the TensorBoard summaries, for log_dir=;
* evaluate: the rules on what was measured, the findings as they appear, the Report.

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
import sys
import time
import warnings

import keras
import tensorflow as tf

from kerascheck.engine import select_rules
from kerascheck.errors import error_line
from kerascheck.monitor.board import Board
from kerascheck.monitor.evaluate import LIVE_RULES, Judge
from kerascheck.monitor.record import LiveResults, LiveRun, Recorder, loss_tensor
from kerascheck.monitor.replay import LastFinite, Replay
from kerascheck.rule import SEVERITIES

__all__ = ["Monitor", "LiveRun", "LiveResults", "LastFinite", "LIVE_RULES"]


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
        # The parts, made afresh as each fit begins: the recording, the replay, the rules.
        self._record: Recorder | None = None
        self._replay: Replay | None = None
        self._judge: Judge | None = None
        self._original = None
        self._active = False

    # ------------------------------------------------------------------ what the last fit left

    @property
    def report(self):
        """The Report, once training has ended (None before)."""
        return self._judge.report if self._judge is not None else None

    @property
    def stopped_at(self) -> dict | None:
        """The step, epoch, rule and layer of the finding that stopped training (stop_on=), if one did."""
        return self._judge.stopped_at if self._judge is not None else None

    @property
    def last_finite(self) -> LastFinite | None:
        """The state and batch just before the step that turned training non-finite (see LastFinite)."""
        return self._replay.last_finite if self._replay is not None else None

    @property
    def results(self) -> LiveResults | None:
        """What the monitor measured, as the rules read it."""
        return self._record.results if self._record is not None else None

    @property
    def _fixed(self):  # the fixed batch, (x, y, sample_weight): tests compare against it
        return self._record.fixed if self._record is not None else None

    # ------------------------------------------------------------------ Keras hooks

    def on_train_begin(self, logs=None):
        self._reset()
        with _quiet():
            try:
                self._setup()
            except Exception as exc:
                self._fail("setting up", exc)

    def on_epoch_begin(self, epoch, logs=None):
        self._record.epoch = epoch + 1
        self._in_epoch = True
        self._epoch_start = self._record.steps

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
                self._judge.finish()
            except Exception as exc:
                self._fail("writing the report", exc)
            finally:
                self._uninstall()
                self._close()
        if self.verbose and self.report is not None:
            self._judge.print_report()

    # ------------------------------------------------------------------ set-up

    def _reset(self):
        self._record = Recorder(self.model, self.every, self.data)
        self._replay = Replay(self._record)
        self._judge = Judge(self.rules, self._record, self.stop_on, self.verbose, self.report_path, self._print)
        self._active = False
        self._armed = False
        self._in_epoch = False
        self._epoch_start, self._batch_begin = 0, 0
        self._pending = None  # (loss, step, epoch) of a step whose loss is read at the next
        self._ready = False

    def _setup(self):
        model = self.model
        self._record.start()
        if self.log_dir:
            self._record.board = Board(self.log_dir)
        self._original = model.train_function
        self._intercept = getattr(model, "steps_per_execution", 1) == 1
        model.train_function = self._train_function
        self._active = True
        if model.variables:
            self._setup_model()
        # else a subclassed model Keras builds in its first step: set up after that step.

    def _setup_model(self):
        """What needs the model's variables: the measurements, the results the rules read, the spec."""
        self._record.setup_model(self.params, self._intercept)
        self._judge.read_spec()
        self._record.use_data()
        self._ready = True

    def _setup_late(self, data):
        """A model Keras built in the first step: set up now; the first step is watched for its loss only."""
        self._setup_model()
        self._record.take_first_batch(data)

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
        record = self._record
        entered = time.perf_counter()
        data = None
        if self._intercept and isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            data = next(iterator)  # StopIteration ends the epoch, as Keras's own function does
        ready = self._ready
        due = ready and record.due()
        spent = self._guard("preparing a measurement", lambda: self._prepare(data, due)) if ready else 0.0
        start = time.perf_counter()
        logs = original([data]) if data is not None else original(iterator)
        loss = loss_tensor(logs)
        synchronous = self.stop_on is not None or due or not ready
        if synchronous:
            loss = float(loss) if loss is not None else None
        ran = time.perf_counter() - start
        if data is not None:
            record.steps += 1
        else:  # Keras ran up to steps_per_execution steps in one call
            execution = int(getattr(self.model, "steps_per_execution", 1) or 1)
            left = (self.params or {}).get("steps")
            left = execution if not left else min(execution, left - self._batch_begin)
            record.steps = self._epoch_start + self._batch_begin + max(left, 1)
        if not ready:
            spent += self._guard("setting up", lambda: self._setup_late(data))
        spent += self._guard("measuring", lambda: self._after(loss, due, synchronous)) if self._ready else 0.0
        record.time_step(entered, ran, spent, due)
        return logs

    def _guard(self, what: str, fn) -> float:
        start = time.perf_counter()
        if self._active:
            with _quiet():
                try:
                    fn()
                except Exception as exc:
                    self._fail(what, exc)
        return time.perf_counter() - start

    def _prepare(self, data, due: bool):
        record, replay = self._record, self._replay
        record.take_first_batch(data)
        if due:
            self._check_pending()  # a divergence in the step before must be found before its state is copied over
            if record.diverged:
                return
            if not record.take_before():
                # Weights went non-finite since the last measurement while the loss stayed finite
                # (a ReLU swallows NaN in a compiled step): keep the last finite copy for the replay.
                self._divergence(record.steps, record.epoch, "weights")
                return
            if data is not None:
                replay.checkpoint(record.steps + 1, record.epoch)
        if data is not None and replay.snapshot is not None and not record.diverged:
            if replay.keep(record.steps + 1, record.epoch, data):
                record.last_measured = None  # measure (and copy the state) at the next step

    def _after(self, loss, due: bool, synchronous: bool):
        record = self._record
        step, epoch = record.steps, record.epoch
        self._check_pending()
        if synchronous:
            self._check_loss(loss, step, epoch)
        else:
            self._pending = (loss, step, epoch)  # read at the next step, once the device has moved on
        if due and not record.diverged and record.fixed is not None and record.no_gradients is None:
            try:
                if not record.measure(step, epoch):
                    # The weights this step left behind are non-finite, whatever the loss Keras logged. (A fixed
                    # batch that overflows on finite weights is measured, not a divergence: training's own loss
                    # tells, at this step or the next.)
                    self._divergence(step, epoch, "weights")
            except Exception as exc:
                # The model's own step cannot be measured here: the loss, the weights and the
                # activations are still watched; the rules that need gradients say why they did not run.
                if os.environ.get("KERASCHECK_DEBUG"):
                    raise

                record.no_gradients = error_line(exc)
            if record.measured(step):
                record.measure_activations()
                self._evaluate()

    def _check_pending(self):
        if self._pending is not None:
            loss, step, epoch = self._pending
            self._pending = None
            self._check_loss(float(loss) if loss is not None else None, step, epoch)

    def _check_loss(self, loss, step: int, epoch: int):
        if loss is None or self._record.diverged:
            return
        if not math.isfinite(loss):
            self._divergence(step, epoch, "nan")

    def _epoch_end(self, epoch: int, logs: dict):
        self._check_pending()
        self._record.epoch_end(epoch, logs)
        self._evaluate()

    def _divergence(self, step: int, epoch: int, why: str):
        """Training went non-finite at `step` (why: "nan" in the loss, or "weights"): replay, localise, judge.

        A finite blow-up is not a divergence here: the exploding-gradients and stalled-loss rules
        judge it, and training is stopped only when the user asks for it.
        """
        self._replay.diverged(step, epoch, why, self._original)
        self._evaluate()

    def _evaluate(self, final: bool = False):
        self._judge.evaluate(self._replay.bad_batch, final)

    # ------------------------------------------------------------------ the monitor's own failures, the end

    def _fail(self, what: str, exc: BaseException):
        """The monitor's own failure: reported, and the monitor switched off; the training goes on."""
        if os.environ.get("KERASCHECK_DEBUG"):
            raise exc

        self._active = False
        self._judge.errors.append({"message": f"kerascheck.Monitor stopped watching while {what}: {error_line(exc)}"})
        if self.verbose:
            self._print(f"kerascheck: the monitor stopped watching while {what}: {error_line(exc)}")

    def _print(self, text: str):
        """A line of its own above Keras's progress bar, which redraws itself below it."""
        out = sys.stdout
        prefix = ""
        if self._in_epoch and (self.params or {}).get("verbose") == 1:
            prefix = "\r\x1b[2K" if getattr(out, "isatty", lambda: False)() else "\n"
        out.write(prefix + text + "\n")
        out.flush()

    def _uninstall(self):
        if self.model is not None and self._original is not None and \
                getattr(self.model, "train_function", None) == self._train_function:
            self.model.train_function = self._original
        self._active = False

    def _close(self):
        board = self._record.board
        if board is not None:
            board.flush()
            board.close()
            self._record.board = None
        self._judge.close()
        self._replay.drop()


def _keys(value) -> list:
    if not value:
        return []
    if isinstance(value, str):
        value = [value]
    return [k.strip() for item in value for k in str(item).split(",") if k.strip()]


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
