"""The `probe` tier: short, budgeted runs of the loaded model that rules read as evidence.

The engine builds one ProbeResults per model, once, however many probe rules are
selected (ruff builds its semantic model once; rules query it). Every run starts
from the weights as loaded: the model object is kerascheck's own copy, loaded from
the file, and the file itself is never written.

Each probe is isolated: one that fails records why in `failures` and only the rules
that need it are skipped with that reason; the others keep their evidence.
"""
from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from kerascheck.modeltier import Options, TierUnavailable
from kerascheck.probe.data import SAMPLE_SIZE, Sample, data_shapes, load_data, read_arrays, synthesize_inputs, \
    synthesize_labels
from kerascheck.probe.measure import OVERFIT_STEPS, activation_growth, activation_stats, batch_dependence, \
    input_stats, locate_divergence, overfit, stats
from kerascheck.probe.train import TrainRun, Trainer, batcher

BATCH_SIZE = 32
LARGE_MODEL_PARAMS = 5_000_000
TRAIN_STEPS = 100
SWEEP_TRIES = 8
DATA_STATS_EXAMPLES = 512

__all__ = ["ProbeResults", "TrainRun", "ModelInfo", "prepare", "run_probes", "TRAIN_STEPS", "OVERFIT_STEPS"]


@dataclass
class ModelInfo:
    """What the model tier learns about a loaded model, once, for the graph and probe tiers."""

    model: object
    io: object  # kerascheck.modelio.ModelIO
    paths: dict  # id(layer) -> (path, layer)
    owners: dict  # id(variable) -> layer path
    roles: list  # InputRole per input
    meanings: list  # per output: "probabilities", "independent probabilities", "unbounded", "unknown"
    raw_data: object = None  # RawData from --data
    sample_x: list = field(default_factory=list)  # the inputs the meanings were measured on
    measured_on: str = ""


def prepare(model, spec, options: Options, raw=None) -> ModelInfo:
    """Inputs, outputs, layer names, input roles and output meanings of a loaded model."""
    from kerascheck.modelio import ModelIO, layer_paths, variable_owners
    from kerascheck.probe.roles import input_roles, output_meanings

    if raw is None and options.data:
        raw = read_arrays(options.data)
    io = ModelIO(model, spec, data_shapes(raw) if raw is not None else None)
    paths = layer_paths(model)
    roles = input_roles(model, io, spec)
    rng = np.random.default_rng(options.seed)
    # Enough examples to tell probabilities from unbounded values; few where each is large
    # (a 224x224 image through ConvNeXt costs a second on a CPU).
    size = sum(int(np.prod([d or 8 for d in p.shape])) for p in io.inputs)
    n = 32 if size <= 4096 else (8 if size <= 65536 else 2)
    if raw is not None:
        xs = [x[:n] for x in load_data(raw, io).x]
        measured_on = f"{len(xs[0])} examples from {options.data}"
    else:
        xs = synthesize_inputs(io, roles, rng, n)
        measured_on = f"{n} synthetic inputs"
    try:
        outs = io(xs, training=False)
    except Exception as exc:
        from kerascheck.modelio import error_line

        raise TierUnavailable(f"calling the model failed: {error_line(exc)}") from None
    meanings = output_meanings([np.asarray(o) for o in outs])
    return ModelInfo(model, io, paths, variable_owners(model, paths), roles, meanings, raw, xs, measured_on)


@dataclass
class ProbeResults:
    device: str
    synthetic: bool
    data_description: str
    defaults: list  # what the probes had to assume (no saved optimizer or loss)
    loss_name: str
    task: str  # "classification", "regression" or "unknown" (a loss kerascheck cannot read labels for)
    notes: list = field(default_factory=list)  # how the model was trained (its own train_step, add_loss)
    train: TrainRun | None = None
    sweep: list = field(default_factory=list)  # [(learning rate, diverged_at or None)]
    stable_run: TrainRun | None = None
    nan_layer: dict | None = None
    overfit: dict | None = None
    batch: dict | None = None
    activations: dict | None = None  # None when no per-layer outputs could be observed
    growth: list = field(default_factory=list)  # per layer at step 0: output RMS, in call order
    layer_params: dict = field(default_factory=dict)  # layer -> trainable parameter count
    kernel_params: dict = field(default_factory=dict)  # layer -> parameters in its kernels
    layer_order: list = field(default_factory=list)  # weighted layers, input to output
    seconds: float = 0.0
    cut: list = field(default_factory=list)  # probes the budget shortened or skipped
    input_stats: list = field(default_factory=list)  # per model input, from --data only
    target_stats: dict | None = None  # from --data y only
    failures: dict = field(default_factory=dict)  # probe -> why it could not run
    not_applicable: dict = field(default_factory=dict)  # probe -> why it does not apply (said as it stands)
    meanings: list = field(default_factory=list)  # per output, as measured
    label_kinds: list = field(default_factory=list)  # per output: how its labels look
    learning_rate: float | None = None  # the configured rate at step 0
    output_units: list = field(default_factory=list)  # last dimension of each output
    synthetic_labels: bool = False  # --data without labels: the labels were made up


def run_probes(info: ModelInfo, spec, options: Options, want: set) -> ProbeResults:
    """Plan and run the probes the selected rules need, within options.budget seconds."""
    import keras

    from kerascheck.probe.setup import make_setup

    model, io = info.model, info.io
    start = time.monotonic()
    deadline = start + options.budget
    no_training = None
    try:
        setup = make_setup(model, io, spec, options)
    except TierUnavailable as exc:
        # Without a loss nothing can train, but the inference probes still can.
        from kerascheck.probe.setup import Setup

        no_training, setup = str(exc), Setup(mode="none")
    keras.utils.set_random_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    kinds = [("onehot" if m == "probabilities" else "binary" if m == "independent probabilities" else "real")
             if l.kind == "match" else l.kind for l, m in zip(setup.losses, info.meanings)]
    sample = _sample(info, setup, rng, options)
    trainer = Trainer(model, io, setup, info.owners)
    batch = BATCH_SIZE if sum(int(np.prod(v.shape)) for v in model.weights) < LARGE_MODEL_PARAMS else 8
    results = ProbeResults(device=options.device_used or "CPU", synthetic=sample.synthetic,
                           data_description=sample.description, defaults=setup.defaults, notes=setup.notes,
                           loss_name=setup.loss_name, task=setup.task, meanings=list(info.meanings),
                           label_kinds=kinds, learning_rate=setup.learning_rate,
                           output_units=[p.shape[-1] if p.shape else 1 for p in io.outputs])
    results.synthetic_labels = sample.synthetic or sample.synthetic_labels
    if no_training is not None:
        want = want - {"train", "sweep", "gradients", "overfit"}
        results.failures["train"] = results.failures["overfit"] = no_training
    results.layer_order = list(trainer.layers)
    for v in trainer.vars:
        name = trainer.owner.get(id(v), "?")
        results.layer_params[name] = results.layer_params.get(name, 0) + int(np.prod(v.shape))
        if len(v.shape) >= 2:
            results.kernel_params[name] = results.kernel_params.get(name, 0) + int(np.prod(v.shape))

    def share(fraction):
        return min(deadline, time.monotonic() + fraction * options.budget)

    progress = _Progress(options.progress, spec.path)

    def attempt(name: str, fn):
        """Run one probe; a failure drops only the rules that need it, with the reason."""
        try:
            return fn()
        except Exception as exc:
            if os.environ.get("KERASCHECK_DEBUG"):
                raise
            from kerascheck.modelio import error_line

            results.failures[name] = error_line(exc)
            if options.verbose:
                traceback.print_exc()
            return None
        finally:
            trainer.reset()

    if "data" in want and not sample.synthetic:
        results.input_stats = attempt("data", lambda: input_stats(io, spec, sample, info.roles, info.paths,
                                                                  DATA_STATS_EXAMPLES, batch)) or []
        if sample.y is not None and not sample.synthetic_labels and len(sample.y) == 1:
            y = np.asarray(sample.y[0], dtype=np.float64)
            results.target_stats = stats(y.reshape(len(y), -1))

    if want & {"train", "sweep", "gradients"} and trainer.vars:
        def train():
            run = trainer.train(batcher(sample, np.random.default_rng(options.seed), batch), TRAIN_STEPS,
                                None, share(0.3), override_lr=False,
                                progress=progress.stage("training at the configured rate"))
            if run.cut:
                results.cut.append(f"training at the configured rate stopped after {run.steps_done} of "
                                   f"{TRAIN_STEPS} steps")
            return run
        results.train = attempt("train", train)
        if results.train is not None and results.train.diverged_at is not None:
            attempt("train", lambda: _sweep(trainer, sample, results, options, share(0.25), batch))
            results.nan_layer = attempt("train", lambda: locate_divergence(trainer, sample, results.train, options,
                                                                             info.paths, batch))
            results.growth = attempt("train", lambda: activation_growth(io, sample, info.paths)) or []
    if "overfit" in want:
        results.overfit = attempt("overfit", lambda: overfit(trainer, sample, kinds, options, share(0.35),
                                                             progress=progress.stage("overfitting 10 examples")))
    if "batch" in want and time.monotonic() < deadline:
        results.batch = attempt("batch", lambda: batch_dependence(io, sample, info.paths))
    elif "batch" in want:
        results.cut.append("batch-dependence probe skipped: no budget left")
    if "activations" in want and time.monotonic() < deadline:
        examples = SAMPLE_SIZE if batch == BATCH_SIZE else 64
        results.activations = attempt("activations", lambda: activation_stats(io, sample, info.paths, examples,
                                                                              batch))
    trainer.reset()
    progress.done()
    results.seconds = time.monotonic() - start
    return results


def _sample(info: ModelInfo, setup, rng, options: Options) -> Sample:
    io = info.io
    if info.raw_data is not None:
        sample = load_data(info.raw_data, io)
        if setup.needs_labels and sample.y is None:
            sample.y = synthesize_labels(io, setup, info.meanings, rng, len(sample))
            sample.description += " with synthetic labels"
            sample.synthetic_labels = True
        elif not setup.needs_labels:
            sample.y = None
        return sample
    xs = synthesize_inputs(io, info.roles, rng, SAMPLE_SIZE)
    ys = synthesize_labels(io, setup, info.meanings, rng, SAMPLE_SIZE)
    what = f"labels for {setup.loss_name}" if ys is not None else f"no labels ({setup.loss_name})"
    return Sample(xs, ys, True, f"{SAMPLE_SIZE} synthetic examples shaped like the model's inputs, {what}")


def _sweep(trainer, sample, results, options, deadline, batch):
    lr = results.train.learning_rate
    for k in range(1, SWEEP_TRIES + 1):
        if time.monotonic() > deadline:
            results.cut.append(f"learning-rate sweep stopped after {k - 1} tries")
            return
        lr_k = lr / 3 ** k
        run = trainer.train(batcher(sample, np.random.default_rng(options.seed), batch), TRAIN_STEPS, lr_k,
                            deadline)
        results.sweep.append((lr_k, run.diverged_at))
        if run.diverged_at is None and not run.cut:
            results.stable_run = run
            return


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
