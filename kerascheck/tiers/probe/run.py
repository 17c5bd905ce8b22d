"""Planning and running the probes one model needs: ModelInfo (what the model tier learned of a
loaded Keras model, `prepare`) and `run_probes`, the one way in to the probe tier."""
from __future__ import annotations

import math
import os
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from kerascheck.errors import TierUnavailable, UsageError, error_line
from kerascheck.options import Options
from kerascheck.tiers.modelio import ModelIO, layer_paths, variable_owners
from kerascheck.tiers.probe.forward import run_forward_probes
from kerascheck.tiers.probe.results import ProbeResults
from kerascheck.tiers.probe.roles import InputRole, input_roles, output_meanings
from kerascheck.tiers.probe.setup import Setup, make_setup, own_compute_loss, own_train_step
from kerascheck.tiers.probe.train import TrainRun, TrainStepUnusable, Trainer, batcher, own_step_reason
from kerascheck.tiers.probe.data import MAX_DATA_EXAMPLES, SAMPLE_SIZE, Sample, data_shapes, label_array, load_data, \
    read_arrays, synthesize_inputs, synthesize_labels
from kerascheck.tiers.probe.measure import OVERFIT_STEPS, activation_growth, activation_stats, batch_dependence, \
    input_stats, locate_divergence, overfit, refresh_batchnorm, stats

BATCH_SIZE = 32
LARGE_MODEL_PARAMS = 5_000_000
TRAIN_STEPS = 100
SWEEP_TRIES = 8
DATA_STATS_EXAMPLES = 512

__all__ = ["ModelInfo", "prepare", "run_probes", "TRAIN_STEPS", "OVERFIT_STEPS"]


@dataclass
class ModelInfo:
    """What the model tier learns about a loaded model, once, for the graph and probe tiers."""
    model: object
    io: object  # kerascheck.tiers.modelio.ModelIO
    paths: dict  # id(layer) -> (path, layer)
    owners: dict  # id(variable) -> layer path
    roles: list  # InputRole per input
    meanings: list  # per output: "probabilities", "independent probabilities", "unbounded", "unknown"
    raw_data: object = None  # RawData from --data
    sample_x: list = field(default_factory=list)  # the inputs the meanings were measured on
    measured_on: str = ""
    output_shapes: list = field(default_factory=list)  # per output, without the batch axis, on sample_x
    spec: object = None  # the spec with the loaded layers' classes (a subclass's), set by the model tier
    kind = "keras"  # the graph tier traces its layer calls


def prepare(model, spec, options: Options, raw=None) -> ModelInfo:
    """Inputs, outputs, layer names, input roles and output meanings of a loaded model."""
    if raw is None and options.data:
        raw = read_arrays(options.data)
    io = ModelIO(model, spec, data_shapes(raw) if raw is not None else None)
    if io.functional and io.open_dims() and raw is None:
        try:
            io.first_call()  # picks the size of the open dimensions the model accepts
        except Exception:
            pass  # said below, where the model is called on the sample
    paths = layer_paths(model)
    roles = input_roles(model, io, spec, paths)
    rng = np.random.default_rng(options.seed)
    # Enough examples to tell probabilities from unbounded values; few where each is large
    # (a 224x224 image through ConvNeXt costs a second on a CPU).
    size = sum(int(np.prod(io.shape(p, 1)[1:])) for p in io.inputs)
    n = 32 if size <= 4096 else (8 if size <= 65536 else 2)
    if raw is not None and not _fit_structure(model, io, raw):
        from dataclasses import replace

        bound = replace(raw, ys={}, positional_y=[]) if getattr(io, "fit_label_names", None) else raw
        xs = [x[:n] for x in load_data(bound, io).x]
        measured_on = f"{len(xs[0])} examples from {options.data}"
    else:
        xs = synthesize_inputs(io, roles, rng, n)
        measured_on = f"{n} synthetic inputs"
    try:
        outs = io(xs, training=False) if io.callable else []
    except Exception as exc:

        raise TierUnavailable(f"calling the model on {measured_on} failed: {error_line(exc)}") from None
    meanings = output_meanings([np.asarray(o) for o in outs])
    info = ModelInfo(model, io, paths, variable_owners(model, paths), roles, meanings, raw, xs, measured_on)
    info.output_shapes = [tuple(np.shape(o)[1:]) for o in outs]
    return info


def run_probes(info: ModelInfo, spec, options: Options, want: set, change=None) -> ProbeResults:
    """Plan and run the probes the selected rules need, within options.budget seconds.

    `change` (kerascheck.diagnosis.interventions.Change) edits the loss, optimizer or examples the probes use,
    to test a fix; its edits to the model itself are made by the caller. Under a change the overfit
    probe is the same experiment (other rates too) that judged the failure.
    """
    if getattr(info, "forward_only", False):  # a runnable with nothing to train (a SavedModel's signature)
        return run_forward_probes(info, spec, options, want)
    import keras


    model, io = info.model, info.io
    start = time.monotonic()
    no_training = None
    try:
        setup = make_setup(model, io, spec, options)
    except TierUnavailable as exc:
        # Without a loss nothing can train, but the inference probes still can.

        no_training, setup = str(exc), Setup(mode="none")
    if change is not None and no_training is None:
        change.edit_setup(setup)
    keras.utils.set_random_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    kinds = [("onehot" if m == "probabilities" else "binary" if m == "independent probabilities" else "real")
             if l.kind == "match" else l.kind for l, m in zip(setup.losses, info.meanings)]
    sample, kinds = _sample(info, setup, rng, options, kinds)
    if change is not None:
        sample = change.edit_sample(sample, io)
    trainer = Trainer(model, io, setup, info.owners)
    own_step_failed = None
    if setup.mode == "train_step" and trainer.vars:
        sample, own_step_failed = _labels_for_own_step(trainer, sample, info, setup, kinds, rng)
    batch = BATCH_SIZE if sum(int(np.prod(v.shape)) for v in model.weights) < LARGE_MODEL_PARAMS else 8
    results = ProbeResults(device=options.device_used or "CPU", synthetic=sample.synthetic,
                           data_description=sample.description, defaults=setup.defaults, notes=setup.notes,
                           loss_name=setup.loss_name, task=setup.task, meanings=list(info.meanings),
                           label_kinds=kinds, learning_rate=setup.learning_rate,
                           output_units=[p.shape[-1] if p.shape else 1 for p in io.outputs],
                           budget=options.budget)
    results.synthetic_labels = sample.synthetic or sample.synthetic_labels
    no_training = no_training or own_step_failed
    if no_training is not None:
        want = want - {"train", "sweep", "gradients", "overfit"}
        results.failures["train"] = results.failures["overfit"] = no_training
    results.layer_order = list(trainer.layers)
    for v in trainer.vars:
        name = trainer.owner.get(id(v), "?")
        results.layer_params[name] = results.layer_params.get(name, 0) + int(np.prod(v.shape))
        if len(v.shape) >= 2:
            results.kernel_params[name] = results.kernel_params.get(name, 0) + int(np.prod(v.shape))

    budget = _Budget(start, options.budget, want)
    progress = _Progress(options.progress, spec.path)

    def attempt(name: str, fn):
        """Run one probe; a failure drops only the rules that need it, with the reason."""
        try:
            return fn()
        except Exception as exc:
            if os.environ.get("KERASCHECK_DEBUG"):
                raise

            results.failures[name] = str(exc) if isinstance(exc, (TrainStepUnusable, TierUnavailable)) \
                else error_line(exc)
            if options.verbose:
                traceback.print_exc()
            return None
        finally:
            trainer.reset()

    def cut(name: str, run: TrainRun | None = None, what: str = "") -> None:
        """The budget ended `name` before its verdict: its rules are skipped, never judged on a part."""
        results.budget_cut[name] = budget.reason(name, run, what)
        results.cut.append(results.budget_cut[name])
        if run is not None:
            results.cut_runs[name] = run

    units = _units(io, sample, options)
    if "data" in want and not sample.synthetic and units and units[0][1].inputs == io.inputs:
        results.input_stats = attempt("data", lambda: input_stats(units[0][1], spec if io.callable else None, sample,
                                                                  info.roles, info.paths, DATA_STATS_EXAMPLES,
                                                                  batch)) or []
        if sample.y is not None and not sample.synthetic_labels and len(sample.y) == 1:
            y = np.asarray(sample.y[0], dtype=np.float64)
            results.target_stats = stats(y.reshape(len(y), -1))

    # Every probe runs a fixed number of steps, whatever the machine's speed; the budget
    # only stops a probe outright, and then its rules are skipped with the reason.
    if want & {"train", "sweep", "gradients"} and trainer.vars:
        results.train = attempt("train", lambda: budget.track("train", trainer.train(
            batcher(sample, np.random.default_rng(options.seed), batch), TRAIN_STEPS, None, budget.deadline,
            override_lr=False, progress=progress.stage("training at the configured rate"))))
        if results.train is not None and results.train.cut:
            cut("train", results.train, "training at the configured rate")
            results.train = None
        elif results.train is not None and results.train.diverged_at is not None:
            attempt("sweep", lambda: _sweep(trainer, sample, results, options, budget, batch))
            if "sweep" in results.failures:
                results.failures.setdefault("train", results.failures["sweep"])
            results.nan_layer = attempt("train", lambda: locate_divergence(trainer, sample, results.train, options,
                                                                             info.paths, batch))
            results.growth = attempt("train", lambda: [g for _, unit, part in units
                                                       for g in activation_growth(unit, part, info.paths)]) or []
    if "overfit" in want:
        if budget.spent():
            cut("overfit")
        else:
            results.overfit = attempt("overfit", lambda: overfit(trainer, sample, kinds, options, budget.deadline,
                                                                 progress=progress.stage("overfitting 10 examples"),
                                                                 synthetic=sample.synthetic or sample.synthetic_labels))
            if results.overfit is not None:
                budget.track("overfit", results.overfit["run"])
                for retry in results.overfit["retries"]:
                    budget.track(f"overfit at {retry['learning_rate']:.3g}", retry["run"])
            if results.overfit is not None and results.overfit["cut"]:
                last = (results.overfit["retries"] or [{"run": results.overfit["run"]}])[-1]["run"]
                cut("overfit", last, "overfitting 10 examples")
                results.overfit = None
    if "batch" in want:
        if budget.spent():
            cut("batch")
        else:
            results.batch = attempt("batch", lambda: _batch_dependence(units, info.paths))
    if "activations" in want:
        if budget.spent():
            cut("activations")
        else:
            examples = SAMPLE_SIZE if batch == BATCH_SIZE else 64
            results.activations = attempt("activations", lambda: {
                k: v for _, unit, part in units for k, v in _settled_activations(unit, part, info.paths, examples,
                                                                                 batch).items()})
    trainer.reset()
    progress.done()
    results.runs = budget.runs
    results.training = setup.record()
    results.inputs_drawn = [] if not sample.synthetic else [role.drawn(port) for port, role in
                                                            zip(io.inputs, info.roles)]
    results.seconds = time.monotonic() - start
    return results


def _fit_structure(model, io, raw) -> bool:
    """Whether --data must reach the model as fit() takes it rather than as call() does: a model with
    its own train_step whose data names (x_source, x_target) are not call()'s inputs. Sets io up."""
    from dataclasses import replace


    if not (own_train_step(model) or own_compute_loss(model)) or raw.positional_x or not raw.xs:
        return False
    if raw.ys and io.outputs and not any(f"y_{p.name}" in raw.ys or f"y_{i}" in raw.ys
                                         for i, p in enumerate(io.outputs)) and "y" not in raw.ys:
        # Labels fit() takes as a dict its own compute_loss reads (a detector's y_boxes, y_labels),
        # not one array per output: handed on as fit() would.
        io.fit_label_names = [k[2:] for k in sorted(raw.ys) if k.startswith("y_")]
        raw = replace(raw, ys={}, positional_y=[])
    try:
        load_data(raw, io)
        return False
    except UsageError:
        arrays = {(k[2:] if k.startswith("x_") else k): raw.xs[k] for k in sorted(raw.xs)}
        if any(not n for n in arrays):
            return False
        io.fit_structure(arrays)
        return True


def _sample(info: ModelInfo, setup, rng, options: Options, kinds: list) -> tuple[Sample, list]:
    """The probes' examples, and the kind of labels each output gets (read from given labels)."""
    io = info.io
    if info.raw_data is not None and getattr(io, "fit_template", None) is not None:
        sample = _fit_sample(info.raw_data, io)
        if setup.mode != "train_step":
            sample.y = None
        return sample, kinds
    if info.raw_data is not None and getattr(io, "fit_label_names", None):
        from dataclasses import replace

        sample = load_data(replace(info.raw_data, ys={}, positional_y=[]), io)
        sample.y = [info.raw_data.ys[f"y_{n}"][:len(sample)] for n in io.fit_label_names]
        sample.description += f", labels as fit() receives them ({', '.join(io.fit_label_names)})"
        return sample, kinds
    if info.raw_data is not None:
        sample = load_data(info.raw_data, io)
        if setup.needs_labels and sample.y is None:
            kinds = _kinds_the_loss_takes(info, setup, kinds, sample.x)
            sample.y = synthesize_labels(io, setup, kinds, rng, len(sample), info.output_shapes)
            sample.description += " with synthetic labels"
            sample.synthetic_labels = True
        elif not setup.needs_labels:
            if setup.mode != "train_step":
                sample.y = None  # its own train_step may unpack (x, y): kept, and tried (_labels_for_own_step)
        else:
            missing = [i for i, y in enumerate(sample.y) if y is None]
            if missing:
                # Outputs fit() gets no labels for: those with no loss take zeros (weighed 0); one whose
                # loss needs labels gets synthetic ones, and the description says so.
                made = synthesize_labels(io, setup, kinds, rng, len(sample), info.output_shapes)
                needed = [io.outputs[i].name for i in missing if setup.losses[i].name != "none"]
                sample.y = [made[i] if y is None else y for i, y in enumerate(sample.y)]
                if needed:
                    sample.description += f" (synthetic labels for {', '.join(needed)})"
                    sample.synthetic_labels = True
            kinds = _kinds_of_labels(kinds, sample.y, info.output_shapes)
        return sample, kinds
    xs = synthesize_inputs(io, info.roles, rng, SAMPLE_SIZE)
    kinds = _kinds_the_loss_takes(info, setup, kinds, xs)
    ys = synthesize_labels(io, setup, kinds, rng, SAMPLE_SIZE, info.output_shapes)
    what = f"labels for {setup.loss_name}" if ys is not None else f"no labels ({setup.loss_name})"
    return Sample(xs, ys, True, f"{SAMPLE_SIZE} synthetic examples shaped like the model's inputs, {what}"), kinds


def _labels_for_own_step(trainer, sample: Sample, info: ModelInfo, setup, kinds: list, rng) -> tuple:
    """(sample, why its train_step cannot run or None). A model's own train_step takes what fit() hands
    it: x alone, or (x, y) when it unpacks labels (`x, y = data`, as keras-io's trainer pattern does).
    One step on two examples tells which: the labels --data gives first, else none, else labels made
    for what the model outputs."""
    from dataclasses import replace


    candidates = [sample.y] if sample.y is not None else []
    candidates.append(None)
    if sample.y is None and info.io.callable and info.output_shapes:
        made = [label_array(k if k != "real" else ("sparse" if m == "probabilities" else "real"), tuple(shape), rng,
                            len(sample))
                for k, m, shape in zip(kinds or ["real"] * len(info.output_shapes),
                                       info.meanings or ["unknown"] * len(info.output_shapes), info.output_shapes)]
        candidates.append(made)
    failure = None
    for ys in candidates:
        x2 = [x[:2] for x in sample.x]
        try:
            step = trainer.step_fn(setup.make_optimizer(None))
            step(x2, None if ys is None else [y[:2] for y in ys])
        except AttributeError as exc:  # it needs what its own compile() set: no data can help
            return sample, own_step_reason(trainer.model, exc)
        except Exception as exc:
            failure = failure or exc
            continue
        finally:
            trainer.reset()
        if ys is sample.y:
            return sample, None
        note = "" if ys is None else " (with labels made for what it outputs: its train_step unpacks (x, y))"
        return replace(sample, y=ys, synthetic_labels=ys is not None or sample.synthetic_labels,
                       description=sample.description + note), None
    what = "its data" if not sample.synthetic else \
        f"synthetic inputs shaped like {trainer.io.source}, with or without labels"
    advice = "" if not sample.synthetic else ": pass --data with a batch as fit() receives it (x_<key> for a dict)"
    return sample, (f"{type(trainer.model).__name__}.train_step did not run on {what} "
                    f"({error_line(failure)}){advice}")


def _fit_sample(raw, io) -> Sample:
    """--data exactly as fit() takes it (a dict of the data's own names), with its labels if any."""
    names = [p.name for p in io.fit_inputs]
    xs = [raw.xs[f"x_{n}"] if f"x_{n}" in raw.xs else raw.xs[n] for n in names]
    ys = list(raw.ys.values())[:1] or None
    keep = min(len(xs[0]), MAX_DATA_EXAMPLES)
    return Sample([x[:keep] for x in xs], None if ys is None else [y[:keep] for y in ys], False,
                  f"{keep} examples from {raw.source}, as fit() receives them ({', '.join(names)})")


def _kinds_of_labels(kinds: list, ys: list, shapes: list) -> list:
    """Class ids or one-hot rows, as the given labels are (a custom loss says nothing of them)."""
    out = list(kinds)
    for i, (kind, y) in enumerate(zip(kinds, ys)):
        shape = tuple(shapes[i]) if i < len(shapes) else None
        if shape is None or kind not in ("sparse", "onehot"):
            continue
        y = np.asarray(y)
        if y.ndim == len(shape) and y.dtype.kind in "iu" and (y.ndim == 1 or shape[-1] != 1):
            out[i] = "sparse"  # one id per position: (N, T) for outputs (N, T, C)
        elif y.ndim == len(shape) + 1 and y.shape[-1] == shape[-1] and shape[-1] > 1:
            out[i] = "onehot"
    return out


def _kinds_the_loss_takes(info: ModelInfo, setup, kinds: list, xs: list) -> list:
    """For a custom loss, the first kind of synthetic labels it accepts on two examples."""
    if setup.mode != "loss" or not any(l.custom for l in setup.losses):
        return kinds
    shapes = info.output_shapes
    x2 = [x[:2] for x in xs]
    try:
        preds = info.io(x2, training=False)
    except Exception:
        return kinds
    chosen = list(kinds)
    for i, loss in enumerate(setup.losses):
        if not loss.custom or i >= len(shapes):
            continue
        for kind in dict.fromkeys([chosen[i], "sparse", "onehot", "binary", "real"]):
            try:
                value = loss.fn(label_array(kind, tuple(shapes[i]), np.random.default_rng(0), 2), preds[i])
                if np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                    chosen[i] = kind
                    break
            except Exception:
                continue
    return chosen


def _units(io, sample: Sample, options: Options) -> list:
    """[(name, ModelIO, Sample)] the inference probes run forward: the model with the probes' sample,
    or, for a model with no call(), each Functional part it holds, the first (whose inputs are the
    model's) with the sample, the others with standard normal inputs of their own shapes (a
    decoder's or a generator's latent codes are drawn that way)."""
    if io.callable and getattr(io, "fit_template", None) is not None:
        xs = synthesize_inputs(io, [InputRole() for _ in io.inputs], np.random.default_rng(options.seed + 2),
                               len(sample))
        return [("", io, Sample(xs, None, True, "synthetic inputs for call()"))]
    if io.callable:
        return [("", io, sample)]
    out = []
    rng = np.random.default_rng(options.seed + 2)
    for name, part in io.parts:
        if part.inputs == io.inputs:
            out.append((name, part, Sample(sample.x, None, sample.synthetic, sample.description)))
        else:
            xs = synthesize_inputs(part, [InputRole() for _ in part.inputs], rng, len(sample))
            out.append((name, part, Sample(xs, None, True, f"standard normal inputs for '{name}'")))
    return out


def _settled_activations(unit, part: Sample, paths: dict, examples: int, batch: int) -> dict:
    """Activation statistics with BatchNormalization's moving statistics set from the sample first: a model
    trained a few steps keeps moving statistics near their initial 0 and 1, and in inference mode its ReLUs
    look dead though training (batch statistics) keeps them alive. The variables are restored after."""
    x, _ = part.take(np.arange(min(len(part), 64)))
    refresh_batchnorm(unit.model, unit, x)
    return activation_stats(unit, part, paths, examples, batch)


def _batch_dependence(units: list, paths: dict) -> dict:
    """The batch probe on each unit; the first that depends on its batch (or the first result)."""
    results = []
    for name, unit, part in units:
        result = batch_dependence(unit, part, paths)
        if name:
            result["part"] = name
        if max(result.get("max_diff_single", 0.0), result.get("max_diff_shuffled", 0.0)) > \
                result.get("tolerance", float("inf")) or result.get("stochastic"):
            return result
        results.append(result)
    if not results:
        raise TierUnavailable("the model holds no Functional part kerascheck could run forward")
    return results[0]


def _sweep(trainer, sample, results, options, budget, batch):
    """Divide the rate by 3 until 100 steps stay finite (at most SWEEP_TRIES tries)."""
    lr = results.train.learning_rate
    for k in range(1, SWEEP_TRIES + 1):
        lr_k = lr / 3 ** k
        run = trainer.train(batcher(sample, np.random.default_rng(options.seed), batch), TRAIN_STEPS, lr_k,
                            budget.deadline)
        budget.track("sweep", run)
        if run.cut:
            results.budget_cut["sweep"] = budget.reason("sweep", run, f"the learning-rate sweep (try {k} of "
                                                                      f"{SWEEP_TRIES}, rate {lr_k:.3g})")
            results.cut.append(results.budget_cut["sweep"])
            results.cut_runs["sweep"] = run
            return
        results.sweep.append((lr_k, run.diverged_at))
        if run.diverged_at is None:
            results.stable_run = run
            return


# Steps each probe plans, to tell a user whose budget ran out what budget lets it finish.
_PLANNED = {"train": TRAIN_STEPS, "sweep": TRAIN_STEPS * 2, "overfit": OVERFIT_STEPS, "batch": 10,
            "activations": 10}
_ORDER = ("train", "sweep", "overfit", "batch", "activations")
_NAMES = {"train": "training at the configured rate", "sweep": "the learning-rate sweep",
          "overfit": "the overfit probe", "batch": "the batch-dependence probe",
          "activations": "the activation-statistics probe"}


class _Budget:
    """The one clock the probes consult: it stops a probe outright, it never shortens a verdict."""
    def __init__(self, start: float, seconds: float, want: set):
        self.start, self.seconds, self.want = start, seconds, want
        self.deadline = start + seconds
        self.steps = 0
        self.runs: list = []  # (probe, TrainRun) in the order they ran

    def spent(self) -> bool:
        return time.monotonic() >= self.deadline

    def track(self, name: str, run: TrainRun) -> TrainRun:
        self.steps += run.steps_done
        self.runs.append((name, run))
        return run

    def reason(self, name: str, run: TrainRun | None, what: str) -> str:
        elapsed = time.monotonic() - self.start
        per_step = elapsed / max(self.steps, 1)
        later = [p for p in _ORDER[_ORDER.index(name):] if p in self.want or p == name]
        left = sum(_PLANNED[p] for p in later) - (run.steps_done if run is not None else 0)
        need = int(math.ceil((elapsed + 1.2 * per_step * max(left, 0)) / 30.0) * 30)
        done = (f"after {run.steps_done} of {run.steps_planned} steps of {what}" if run is not None
                else f"before {_NAMES[name]} started")
        return (f"the time budget (--budget {self.seconds:g}) ran out {done}; a probe cut short is not judged: "
                f"--budget {max(need, int(self.seconds) + 30)} lets it finish")


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
