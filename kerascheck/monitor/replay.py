"""Replaying the step that turned training non-finite.

To keep the batch that broke a run, the monitor takes each batch from Keras's
iterator itself and hands it to Keras's own compiled step (the path Keras takes for
batches that come as a Python iterable); at each measurement it copies the weights,
the optimizer's state and the metrics to host memory. When the loss turns
non-finite it replays from that copy over the batches since, finds the step and the
first layer whose activations, gradients or weights went non-finite, keeps the last
finite state and that batch (`monitor.last_finite`), and puts the run back exactly
as it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from kerascheck.monitor.record import as_numpy, as_tensors, is_float, local_batch, loss_tensor, number, unique, unpack
from kerascheck.tiers.modelio import Tap
from kerascheck.tiers.probe.data import from_xy
from kerascheck.tiers.probe.measure import first_nonfinite

KEPT_BATCH_BYTES = 256 << 20  # batches held for a replay; past this a fresh copy of the state is taken


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


class Replay:
    """The last copy of the state and the batches since, and what replaying them found."""
    def __init__(self, record):
        self.record = record  # a record.Recorder: the model, its layers, the run, the compiled functions
        self.snapshot: dict | None = None  # step, epoch and state the kept batches start from
        self.kept: list = []  # (step, epoch, batch) since the snapshot
        self.kept_bytes = 0
        self.last_finite: LastFinite | None = None
        self.bad_batch = None  # the batch that broke training, as the data the nonfinite-data rule reads

    def checkpoint(self, step: int, epoch: int):
        """Copy the state before `step`, the start of a replay; the batches kept so far are dropped."""
        self.snapshot = {"step": step, "epoch": epoch, "state": _capture(self.record.model)}
        self.kept, self.kept_bytes = [], 0

    def keep(self, step: int, epoch: int, data) -> bool:
        """Keep a batch for a replay; whether the kept batches have outgrown KEPT_BATCH_BYTES."""
        self.kept.append((step, epoch, data))
        self.kept_bytes += _nbytes(data)
        return self.kept_bytes > KEPT_BATCH_BYTES

    def drop(self):
        self.kept, self.snapshot = [], None

    def diverged(self, step: int, epoch: int, why: str, train_function):
        """Training went non-finite at `step` (why: "nan" in the loss, or "weights"): replay with Keras's
        `train_function`, localise, and record both in the run; the run is put back as it was."""
        record = self.record
        record.diverged = True
        run = record.run
        run.diverged_at, run.why = step - 1, why
        run.diverged_step, run.diverged_epoch = step, epoch
        rate = record.rate()
        current = _capture(record.model)
        try:
            found = self._replay(step, train_function) if self.snapshot is not None else None
        finally:
            _put_back(current)
            self.drop()  # measuring stops here; nothing more to replay
        if found is not None:
            step, epoch = found["step"], found["epoch"]
            run.diverged_at, run.diverged_step, run.diverged_epoch = step - 1, step, epoch
            rate = found.pop("learning_rate")
            record.results.nan_layer = found if found.get("layer") else None
        run.learning_rate = rate

    def _replay(self, step: int, train_function) -> dict | None:
        """From the last copy of the state, the kept batches again, step by step, until one breaks."""
        record, model = self.record, self.record.model
        snap = self.snapshot
        _put_back(snap["state"])
        for j, epoch, data in self.kept:
            if j > step:
                break
            before = _capture(model)
            logs = train_function([data])
            loss = number(loss_tensor(logs))
            broke = (loss is not None and not math.isfinite(loss)) or not bool(record.finite_fn())
            if not broke:
                continue
            _put_back(before)
            found = self._localise(data, train_function)
            _put_back(before)
            rate = record.rate()
            batch = as_numpy(local_batch(data, record.strategy))
            values = {id(v): a for v, a in zip(*before)}
            opt = model.optimizer
            self.last_finite = LastFinite(step=j, epoch=epoch, learning_rate=rate,
                                          weights=[values[id(v)] for v in model.variables],
                                          optimizer_variables=[values[id(v)] for v in opt.variables] if opt else [],
                                          batch=unpack(batch), layer=found.get("layer"), where=found.get("where"),
                                          model=model)
            self.bad_batch = _raw_batch(batch, j, epoch)
            count = j - snap["step"] + 1
            record.run.replay = (f"replayed from the state before step {snap['step']} over {count} "
                                 f"batch{'es' if count != 1 else ''}")
            return {**found, "step": j, "epoch": epoch, "learning_rate": rate}
        record.run.replay = (f"replaying from the state before step {snap['step']} to step {step} did not turn the "
                             "loss or the weights non-finite again (non-deterministic kernels)")
        return None

    def _localise(self, data, train_function) -> dict:
        """Where the first non-finite value arises in the step: activations, then gradients, then the update."""
        record, model = self.record, self.record.model
        x, y, sw = unpack(local_batch(data, record.strategy))
        found: dict = {"layer": None, "where": None}
        layers = {id(layer): path for path, layer in record.paths.values()}
        with Tap(layers) as tap:
            try:
                model(x, training=True) if model._call_has_training_arg else model(x)
            except Exception:
                pass
        first = first_nonfinite(tap)
        if first is not None:
            return {"layer": first[0], "where": "activations", "nonfinite": first[1]}
        _, norms = record.grad_fn(*as_tensors((x, y, sw)))
        norms = np.asarray(norms, dtype=np.float64)
        # Gradients flow from the output back: a non-finite value born in one layer's backward
        # pass reaches every layer before it, so the origin is the one nearest the output.
        for v, n in zip(record.trainable, norms):
            if not math.isfinite(n):
                found = {"layer": record.owners.get(id(v), "?"), "where": "gradients"}
        if found["layer"] is not None:
            return found
        train_function([data])
        for v in model.variables:
            if is_float(v) and not np.all(np.isfinite(np.asarray(v.numpy(), dtype=np.float64))):
                return {"layer": record.owners.get(id(v), "?"), "where": "weights after the update"}
        return found


def _capture(model) -> tuple:
    """Everything a step changes, copied to host memory: weights, optimizer state (Keras builds
    the optimizer's slots in the first step, so the list is read each time), metrics."""
    opt = model.optimizer
    state = unique(list(model.variables) + list(opt.variables if opt is not None else [])
                   + list(model.metrics_variables))
    return state, [np.array(v.numpy()) for v in state]


def _put_back(copy: tuple) -> None:
    for v, value in zip(*copy):
        v.assign(value)


def _nbytes(data) -> int:
    total = 0
    for v in tf.nest.flatten(data):
        if isinstance(v, tf.distribute.DistributedValues):
            v = v.values
            total += sum(int(np.prod(p.shape)) * p.dtype.size for p in v)
        elif hasattr(v, "shape") and hasattr(v, "dtype"):
            total += int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size
    return total


def _raw_batch(batch, step: int, epoch: int):
    """The batch that broke training, as the data the nonfinite-data rule reads."""
    x, y, _ = unpack(batch)
    raw = from_xy(f"the training batch of step {step}", x, y)
    raw.described_as = f"The training batch of step {step} (epoch {epoch})"
    return raw
