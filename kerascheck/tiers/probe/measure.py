"""Probes that read the model rather than train it for long: memorisation, batch dependence,
activation statistics, what reaches the first weighted layer, where a divergence starts.

Per-layer values come from a Tap on the layers' calls, so they work the same for
Functional models, nested models and subclassed models, and a layer that returns
several tensors (an LSTM with `return_state`, attention with its scores) is measured
output by output.
"""
from __future__ import annotations

import math

import numpy as np

from kerascheck.facts.topology import SCALING_LAYERS, graph_of
from kerascheck.tiers.modelio import Tap
from kerascheck.tiers.probe.train import TrainRun, batcher

OVERFIT_EXAMPLES = 10
OVERFIT_STEPS = 300
RELU_FAMILY = {"relu", "relu6"}
SQUASH = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99), "hard_sigmoid": (0.01, 0.99)}
# Layers whose `activation` acts inside them, not on what they return.
_INTERNAL_ACTIVATION = {"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
                        "Bidirectional", "TimeDistributed", "MultiHeadAttention"}
# Below this, a layer's input is about the same for every example (relative spread).
STILL_INPUT = 0.05


def _as_input(x):
    return x if isinstance(x, list) else [x]


# ------------------------------------------------------------------- overfit


def overfit(trainer, sample, kinds: list, options, deadline, steps: int = OVERFIT_STEPS, progress=None,
            synthetic: bool = False) -> dict:
    """Train on 10 examples, full batch; judged by the predictions, not by the loss alone.

    An experiment rather than one run. When the model does not memorise in 300 steps at
    its own rate, the same 300 steps are tried at other rates (RETRY_FACTORS, from its own),
    and the first rate that memorises is kept. If none does but the model was still learning
    at its own rate (its loss fell by a tenth or more over the last 100 steps), it trains
    again at its own rate until it memorises or stops learning, up to OVERFIT_MAX_STEPS:
    memorising is slow for some models (a PixelCNN sees only the pixels above), and a
    falling loss is not a failure. Dropout and random augmentation are off: memorising
    tests capacity and wiring, and their noise alone keeps a training loss above any fixed
    share of its start.
    """
    setup = trainer.setup
    rng = np.random.default_rng(options.seed + 1)
    idx = rng.choice(len(sample), size=min(OVERFIT_EXAMPLES, len(sample)), replace=False)
    x, y = sample.take(idx)

    def attempt(rate, limit):
        losses_seen: list = []
        stopped: dict = {}

        def stop(i, loss):
            losses_seen.append(loss)
            if i % 10 != 9:
                return False
            verdict = judge(trainer, x, y, kinds, losses_seen)
            if verdict["ok"]:
                stopped.update(verdict)  # the verdict that stopped the run is the one reported
                return True
            return i + 1 >= steps and not still_falling(losses_seen)

        if not trainer.vars:
            run = TrainRun(setup.learning_rate, steps)
        else:
            run = trainer.train(lambda i: (x, y), limit, rate, deadline, stop=stop, override_lr=rate is not None,
                                progress=progress if rate is None else None)
        if not run.losses:  # nothing to train: score the loss as it stands
            value = trainer.loss(x, y, training=False)
            losses = [float(value) if value is not None else float("nan")] * 2
        else:
            losses = list(run.losses)
        verdict = stopped or judge(trainer, x, y, kinds, losses)
        verdict["still_falling"] = not verdict["ok"] and still_falling(losses)
        return run, verdict

    # On synthetic labels a failure is a hint at most: one retry (10x, what a fine-tuning rate on fresh
    # weights needs) and no extension keep the probe's cost near one run's for models that cannot
    # memorise random labels (a segmenter's random pixels).
    rates_to_try = retry_rates(setup.learning_rate, setup)
    if synthetic:
        rates_to_try = rates_to_try[:1]
    with augmentation_off(trainer.model) as switched_off, dropout_off(trainer.model) as no_dropout:
        run, verdict = attempt(None, steps)
        retries = []
        if not verdict["ok"] and trainer.vars and not run.cut and run.diverged_at is None:
            for rate in rates_to_try:
                other, found = attempt(rate, steps)
                retries.append({"run": other, "learning_rate": rate, "ok": found["ok"], "steps": other.steps_done,
                                "accuracy": found["accuracy"], "first_loss": found["first_loss"],
                                "last_loss": found["last_loss"], "diverged_at": other.diverged_at,
                                "cut": other.cut})
                if found["ok"] or other.cut:
                    break
            if verdict["still_falling"] and not synthetic and not any(r["ok"] or r["cut"] for r in retries):
                # No rate does it in 300 steps, but the model was still learning at its own: let it go
                # on (from the start, as every run starts) until it memorises or stops learning.
                run, verdict = attempt(None, max(steps, OVERFIT_MAX_STEPS))
        trainer.reset()
    # A layer the loss never reaches (a masked LM's unused pooler) has no gradient by design: no cause.
    zero_grad = [name for name, norms in run.layer_norms.items()
                 if norms and max(norms) == 0.0 and name not in (run.unused or ())]
    return {"run": run, **verdict, "zero_gradient_layers": zero_grad,
            "trainable_parameters": int(sum(int(np.prod(v.shape)) for v in trainer.vars)),
            "learning_rate": run.learning_rate, "augmentation_off": switched_off + no_dropout.names,
            "retries": retries, "cut": run.cut or any(r["cut"] for r in retries)}


OVERFIT_MAX_STEPS = 1000  # a model still learning at step 300 may go on to this many
FALLING_WINDOW = 100  # steps over which a loss must fall by FALLING_SHARE to count as still learning
FALLING_SHARE = 0.1


def still_falling(losses: list) -> bool:
    """Whether the loss fell by a tenth or more over the last FALLING_WINDOW steps (means of 10)."""
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < FALLING_WINDOW + 10:
        return False
    now = float(np.mean(finite[-10:]))
    before = float(np.mean(finite[-FALLING_WINDOW - 10:-FALLING_WINDOW]))
    return before > 0 and now < (1 - FALLING_SHARE) * before


# The rates a failed memorisation is tried again at, as multiples of the model's own: a rate
# ten or a hundred times higher (a fine-tuning rate on fresh weights), then ten times lower.
RETRY_FACTORS = (10.0, 100.0, 0.1)
MAX_ADAPTIVE_RATE = 0.1  # Adam and its kind diverge on nearly everything above this


def retry_rates(rate: float, setup) -> list:
    name = getattr(setup.opt_class, "__name__", "") or ""
    ceiling = 1.0 if name == "SGD" else MAX_ADAPTIVE_RATE
    out = []
    for factor in RETRY_FACTORS:
        r = float(rate) * factor
        if 0 < r <= ceiling and all(abs(r - o) > 1e-12 for o in out):
            out.append(r)
    return out


AUGMENTATIONS = {"AugMix", "CutMix", "MixUp", "RandAugment"}


class augmentation_off:
    """Random augmentation layers pass their input through unchanged, for as long as the block runs.

    Memorising 10 examples is a test of capacity and wiring; flips and rotations drawn
    anew at every step make the 10 a moving target that no model is meant to memorise.
    """

    def __init__(self, model):
        self.model = model
        self.layers: list = []

    def __enter__(self) -> list:
        def identity(data, training=None, **kwargs):
            return data

        for layer in self.model._flatten_layers(include_self=False, recursive=True):
            cls = type(layer).__name__
            if cls.startswith("Random") or cls in AUGMENTATIONS:
                self.layers.append(layer)
                layer.call = identity
        return [l.name for l in self.layers]

    def __exit__(self, *exc):
        for layer in self.layers:
            del layer.call  # back to the class's own call


def judge(trainer, x, y, kinds: list, losses: list) -> dict:
    """Whether the model memorised (x, y): every class prediction right, or the loss near zero.

    BatchNormalization's moving statistics lag far behind 10 examples trained on for a
    few hundred steps; they are refreshed from the examples first, so inference-mode
    predictions are judged on the statistics the model would settle on. A loss that
    fell to 1% of its start counts as memorised, whatever a prediction threshold says,
    unless the predictions do not vary at all (a softmax over one unit lowers the loss
    computed from its logits while every prediction stays 1.0).
    """
    preds = []
    if trainer.io.callable:  # a model with no call() is judged by its loss alone
        refresh_batchnorm(trainer.model, trainer.io, x)
        preds = [np.asarray(p, dtype=np.float64) for p in trainer.io(x, training=False)]
    # None: no predictions to compare (a model with no call() is judged by its loss alone)
    spread = max((float(np.max(np.std(p, axis=0))) if len(p) > 1 else 0.0) for p in preds) if preds else None
    finite = [v for v in losses if math.isfinite(v)]
    first = finite[0] if finite else float("nan")
    last = losses[-1] if losses else float("nan")
    known = objective_known(trainer.setup)
    # A loss kerascheck knows reaches about zero on memorised examples; one it does not
    # know (a VAE's ELBO, a CTC loss, the user's own) need only fall clearly.
    target = TARGET_KNOWN if known else TARGET_UNKNOWN
    fell = math.isfinite(last) and math.isfinite(first) and last <= first - (1 - target) * abs(first)
    accuracy = _accuracy(preds, y, kinds, trainer.setup) if y is not None else None
    dense = bool(y is not None and any(_labels_per_example(p, k) > 1 for p, k in zip(preds, kinds)))
    needed = DENSE_ACCURACY if dense else 1.0
    if accuracy is not None:
        ok = accuracy >= needed or (fell and spread is not None and spread > 1e-6)
    else:
        ok = fell
    return {"ok": ok, "accuracy": accuracy, "first_loss": first, "last_loss": last, "prediction_spread": spread,
            "loss_fell": fell, "objective_known": known, "target_share": target, "dense": dense,
            "accuracy_needed": needed}


# A segmenter or a language model predicts a class per pixel or per token: thousands of
# labels per 10 examples, of which a memorising model still gets a few borders or rare
# tokens wrong. Calibrated on healthy dense models (bench/calibrate.py).
DENSE_ACCURACY = 0.98


def _labels_per_example(pred: np.ndarray, kind: str) -> int:
    """How many positions one example of this output predicts at (pixels, tokens, or 1); the last axis
    holds the classes (or the independent yes/no labels of one position)."""
    shape = pred.shape[1:-1]
    return int(np.prod(shape)) if len(shape) else 1


TARGET_KNOWN = 0.01  # the loss must fall below this share of its start (Keras's own losses)
TARGET_UNKNOWN = 0.5  # the same for an objective kerascheck cannot interpret


def objective_known(setup) -> bool:
    """Whether the loss is one of Keras's own, whose memorised value is about zero."""
    return setup.mode == "loss" and all(not l.custom for l in setup.losses)


def _accuracy(preds: list, ys: list, kinds: list, setup) -> float | None:
    """The lowest accuracy over the outputs, or None when an output is not a classification."""
    if not kinds or any(k not in ("sparse", "onehot", "binary") for k in kinds):
        return None
    worst = 1.0
    for pred, y, kind, loss in zip(preds, ys, kinds, setup.losses or [None] * len(kinds)):
        y = np.asarray(y)
        if kind == "sparse":
            correct = np.argmax(pred, axis=-1) == y.reshape(pred.shape[:-1])
        elif kind == "onehot":
            correct = np.argmax(pred, axis=-1) == np.argmax(y, axis=-1)
        else:
            threshold = 0.0 if (loss is not None and loss.from_logits) else 0.5
            correct = (pred > threshold) == (y.reshape(pred.shape) > 0.5)
        worst = min(worst, float(np.mean(correct)))
    return worst


def refresh_batchnorm(model, io, x) -> None:
    """Set every BatchNormalization's moving statistics to those of the batch x (momentum 0, one pass)."""
    import keras

    bns = [l for l in model._flatten_layers(include_self=False, recursive=True)
           if isinstance(l, keras.layers.BatchNormalization)]
    if not bns:
        return
    saved = [bn.momentum for bn in bns]
    try:
        for bn in bns:
            bn.momentum = 0.0
        # Dropout before a BatchNormalization would make the statistics (and the verdict) a draw.
        with dropout_off(model):
            io(x, training=True)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m


class dropout_off:
    """Dropout layers pass their input through unchanged while the block runs."""
    def __init__(self, model):
        self.model = model
        self.layers: list = []

    def __enter__(self):
        import keras

        def identity(inputs, training=None, **kwargs):
            return inputs

        self.names: list = []
        for layer in self.model._flatten_layers(include_self=False, recursive=True):
            if "call" in vars(layer):
                continue  # already passing through (this block inside another)
            if isinstance(layer, (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
                                  keras.layers.SpatialDropout3D, keras.layers.GaussianDropout,
                                  keras.layers.AlphaDropout, keras.layers.GaussianNoise)):
                self.layers.append(layer)
                self.names.append(layer.name)
                layer.call = identity
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            del layer.call


# ---------------------------------------------------------- batch dependence


def batch_dependence(io, sample, paths: dict) -> dict:
    n = min(8, len(sample))
    x, _ = sample.take(np.arange(n))
    whole = _flat(io(x, training=False))
    result = {"examples": n, "first_layer": None}
    if not np.all(np.isfinite(whole)):
        result.update(nonfinite_output=True, max_diff_single=float("nan"), max_diff_shuffled=float("nan"),
                      tolerance=float("nan"))
        return result
    again = _flat(io(x, training=False))
    scale = 1.0 + float(np.max(np.abs(whole)))
    if np.max(np.abs(whole - again)) > 1e-4 * scale:
        # The same batch twice gives different outputs: the model draws noise at inference
        # (a VAE's sampling layer), so a difference between batchings proves nothing.
        result.update(stochastic=True, max_diff_repeat=float(np.max(np.abs(whole - again))),
                      max_diff_single=float("nan"), max_diff_shuffled=float("nan"), tolerance=1e-4 * scale)
        result["first_layer"] = _first_parting(io, paths, x, x)
        return result
    single = np.concatenate([_flat(io([a[i:i + 1] for a in x], training=False)) for i in range(n)])
    perm = np.random.default_rng(7).permutation(n)
    shuffled = np.empty_like(whole)
    shuffled[perm] = _flat(io([a[perm] for a in x], training=False))
    scale = 1.0 + float(np.max(np.abs(whole)))
    result.update(max_diff_single=float(np.max(np.abs(whole - single))),
                  max_diff_shuffled=float(np.max(np.abs(whole - shuffled))), tolerance=1e-4 * scale)
    if max(result["max_diff_single"], result["max_diff_shuffled"]) > result["tolerance"]:
        layers = {id(layer): path for path, layer in paths.values()}
        with Tap(layers) as tap_whole:
            io(x, training=False)
        singles = []
        for i in range(n):
            with Tap(layers) as tap:
                io([a[i:i + 1] for a in x], training=False)
            singles.append(tap.record)
        for path in tap_whole.order:
            w = _flat_calls(tap_whole.record[path])
            try:
                s = np.concatenate([_flat_calls(rec[path]) for rec in singles])
            except (KeyError, ValueError):
                continue
            if w.shape == s.shape and np.max(np.abs(w - s)) > 1e-4 * (1.0 + np.max(np.abs(w))):
                result["first_layer"] = path
                result["first_layer_diff"] = float(np.max(np.abs(w - s)))
                break
    return result


def _first_parting(io, paths: dict, first: list, second: list) -> str | None:
    """The first layer (in call order) whose outputs differ between a call on `first` and one on `second`."""
    layers = {id(layer): path for path, layer in paths.values()}
    with Tap(layers) as one:
        io(first, training=False)
    with Tap(layers) as two:
        io(second, training=False)
    for path in one.order:
        try:
            a, b = _flat_calls(one.record[path]), _flat_calls(two.record[path])
        except (KeyError, ValueError, IndexError):
            continue
        if a.shape == b.shape and np.max(np.abs(a - b)) > 1e-4 * (1.0 + np.max(np.abs(a))):
            return path
    return None


def _flat(outputs) -> np.ndarray:
    """Outputs (a list of tensors, batch first) as one (batch, values) array."""
    arrays = [np.asarray(o, dtype=np.float64) for o in outputs]
    return np.concatenate([a.reshape(a.shape[0], -1) for a in arrays], axis=1)


def _flat_calls(calls: list) -> np.ndarray:
    first = calls[0]  # a layer called twice: its first call
    arrays = [np.asarray(a, dtype=np.float64) for a in first if np.ndim(a) >= 1]
    return np.concatenate([a.reshape(a.shape[0], -1) for a in arrays], axis=1)


# ------------------------------------------------------------ activations


def activation_kind(layer) -> str | None:
    cls = type(layer).__name__
    if cls in _INTERNAL_ACTIVATION:
        return None
    if not (type(layer).__module__ or "").startswith("keras."):
        return None  # a custom layer's `activation` may act inside it (KerasHub's PredictionHead), not on its output
    if cls == "ReLU":
        return "relu"
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) if act is not None else None
    return name if name in RELU_FAMILY or name in SQUASH else None


def activation_stats(io, sample, paths: dict, examples: int, batch: int) -> dict:
    """Dead and saturated units per layer, streamed over the sample in batches (memory: one batch).

    Each layer's input is measured too: when it hardly varies across examples, the
    units cannot either, and that, not their weights, is why they look dead.
    """
    judged = {id(layer): path for path, layer in paths.values() if activation_kind(layer) is not None}
    kinds = {path: activation_kind(layer) for path, layer in paths.values() if id(layer) in judged}
    if not judged:
        return {}
    n = min(len(sample), examples)
    active: dict = {}  # (layer, output index) -> per unit: ever positive (ReLU) / count of saturated examples
    seen: dict = {}
    inputs: dict = {}
    for start in range(0, n, batch):
        x, _ = sample.take(np.arange(start, min(start + batch, n)))
        with Tap(judged, inputs=True) as tap:
            io(x, training=False)
        for path, calls in tap.record.items():
            kind = kinds[path]
            for call in calls:
                for k, out in enumerate(call):
                    a = np.asarray(out, dtype=np.float32)
                    if a.ndim < 2 or a.dtype.kind != "f":
                        continue
                    per_example = a.reshape(a.shape[0], -1, a.shape[-1])  # units on the last axis
                    key = (path, k)
                    if kind in RELU_FAMILY:
                        alive = np.any(per_example > 0.0, axis=(0, 1))
                        active[key] = active.get(key, np.zeros_like(alive)) | alive
                    else:
                        lo, hi = SQUASH[kind]
                        # An example saturates a unit when it does so at every position.
                        sat = np.sum(np.all((per_example <= lo) | (per_example >= hi), axis=1), axis=0)
                        active[key] = active.get(key, np.zeros_like(sat)) + sat
                    seen[key] = seen.get(key, 0) + a.shape[0]
        for path, calls in tap.inputs.items():
            for call in calls[:1]:
                if call and np.ndim(call[0]) >= 2 and np.asarray(call[0]).dtype.kind == "f":
                    inputs.setdefault(path, []).append(np.asarray(call[0], dtype=np.float64).reshape(
                        np.shape(call[0])[0], -1))
    stats = {}
    for (path, k), acc in active.items():
        name = path if k == 0 else f"{path}[{k}]"
        kind = kinds[path]
        count = seen[(path, k)]
        entry = {"kind": kind, "units": int(acc.size), "examples": count}
        if kind in RELU_FAMILY:
            dead = ~acc
            entry.update(dead=int(np.count_nonzero(dead)), dead_share=float(np.mean(dead)))
        else:
            saturated = acc >= 0.99 * count
            entry.update(saturated=int(np.count_nonzero(saturated)), saturated_share=float(np.mean(saturated)))
        if k == 0 and path in inputs:
            entry["input_variation"] = input_variation(np.concatenate(inputs[path]))
        stats[name] = entry
    return stats


def input_variation(a: np.ndarray) -> float:
    """How much a layer's input changes from example to example, relative to its size."""
    spread = float(np.median(np.std(a, axis=0)))
    size = float(np.median(np.mean(np.abs(a), axis=0))) + float(np.median(np.std(a, axis=0)))
    return spread / size if size > 0 else 0.0


# ---------------------------------------------------------------- divergence


def locate_divergence(trainer, sample, run: TrainRun, options, paths: dict, batch: int) -> dict | None:
    """Replay up to the divergent step and find where the non-finite values start.

    Checked in the order they arise within the step: activations in the forward
    pass (ReLU can swallow NaN inside a compiled graph, so each layer's output is
    inspected, not only the loss), then gradients, then the weights the update wrote.
    """
    import tensorflow as tf

    batches = batcher(sample, np.random.default_rng(options.seed), batch)
    trainer.reset()
    optimizer = trainer.setup.make_optimizer(None)
    step = trainer.step_fn(optimizer)
    for i in range(run.diverged_at):
        step(*batches(i))
    x, y = batches(run.diverged_at)
    found = None
    layers = {id(layer): path for path, layer in paths.values()}
    with Tap(layers) as tap:
        try:
            if trainer.io.callable:
                trainer.io(x, training=True)
        except Exception:
            pass
    first = first_nonfinite(tap)
    if first is not None:
        found = {"layer": first[0], "where": "activations", "step": run.diverged_at, "nonfinite": first[1]}
    if found is None and trainer.setup.mode != "train_step":
        with tf.GradientTape() as tape:
            loss = trainer.loss(x, y, training=True)
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


def first_nonfinite(tap) -> tuple[str, int] | None:
    """(layer, how many values) of the first layer, in call order, whose outputs hold NaN/Inf."""
    for path in tap.order:
        for call in tap.record[path]:
            bad = sum(int(np.count_nonzero(~np.isfinite(a))) for a in call if np.asarray(a).dtype.kind == "f")
            if bad:
                return path, bad
    return None


def activation_growth(io, sample, paths: dict) -> list:
    """At step 0, each layer's output scale (RMS) in call order: how activations grow through depth."""
    x, _ = sample.take(np.arange(min(32, len(sample))))
    layers = {id(layer): path for path, layer in paths.values()}
    with Tap(layers) as tap:
        try:
            io(x, training=False)
        except Exception:
            return []
    out = []
    for path in dict.fromkeys(tap.order):
        call = tap.record[path][0]
        floats = [np.asarray(a, dtype=np.float64) for a in call if np.asarray(a).dtype.kind == "f"]
        if not floats:
            continue
        a = floats[0]
        finite = np.isfinite(a)
        rms = float(np.sqrt(np.mean(np.square(a[finite])))) if finite.any() else float("nan")
        out.append({"layer": path, "rms": rms, "nonfinite": int(np.count_nonzero(~finite))})
    return out


# ------------------------------------------------------------- input scale


def input_stats(io, spec, sample, roles: list, paths: dict, examples: int, batch: int) -> list:
    """For each input, statistics of what reaches the first weighted layer (after in-model scaling)."""
    n = min(len(sample), examples)
    places = []
    graph = graph_of(spec) if spec is not None and spec.outputs else None
    by_name = {i.name: i for i in spec.inputs} if spec is not None else {}
    for i, port in enumerate(io.inputs):
        entry = by_name.get(port.name) or (spec.inputs[i] if graph is not None and i < len(spec.inputs) else None)
        start = spec.layer(entry.name) if graph is not None and entry is not None else None
        places.append(_first_weighted(graph, start.qualname) if start else (None, None))
    received = None
    if graph is None and len(io.inputs) == 1:
        # A subclass: what its first weighted layer receives, whatever call() did to the input first.
        received = _first_weighted_input(io, sample, paths, n, batch)
        if received is not None:
            places = [(received[0], None)]
    by_path = {path: layer for path, layer in paths.values()}
    wanted = {feeder: by_path[feeder] for _, feeder in places if feeder in by_path}
    collected: dict = {name: [] for name in wanted}
    if wanted:
        for start in range(0, n, batch):
            x, _ = sample.take(np.arange(start, min(start + batch, n)))
            with Tap({id(layer): path for path, layer in wanted.items()}) as tap:
                io(x, training=False)
            for path, calls in tap.record.items():
                if calls and calls[0]:
                    collected[path].append(np.asarray(calls[0][0], dtype=np.float64))
    out = []
    for i, (port, (first, feeder)) in enumerate(zip(io.inputs, places)):
        if np.asarray(sample.x[i]).dtype.kind in "USO":  # strings: what a lookup maps to ids, no scale
            out.append({"input": port.name, "first_weighted": first, "categorical": True, "role": roles[i].why,
                        "examples": n, "strings": True})
            continue
        if received is not None:
            arr, measured_at = received[1], f"the input of '{received[0]}'"
        elif feeder in collected and collected[feeder]:
            arr, measured_at = np.concatenate(collected[feeder]), f"the output of '{feeder}'"
        else:
            arr, measured_at = np.asarray(sample.x[i][:n], dtype=np.float64), "the raw input"
        if arr.ndim == 1:
            arr = arr[:, None]
        st = stats(arr.reshape(-1, arr.shape[-1]))
        st.update({"input": port.name, "shape": list(port.shape), "first_weighted": first, "measured_at": measured_at,
                   "raw_min": float(np.min(sample.x[i][:n])), "raw_max": float(np.max(sample.x[i][:n])),
                   "examples": n, "categorical": roles[i].categorical, "role": roles[i].why})
        out.append(st)
    return out


def stats(a: np.ndarray) -> dict:
    """Per-feature statistics of a 2-D array (examples x features), first 256 features."""
    a = a[:, :256]
    finite = np.where(np.isfinite(a), a, np.nan)
    return {"mean": np.nanmean(finite, axis=0).tolist(), "std": np.nanstd(finite, axis=0).tolist(),
            "min": np.nanmin(finite, axis=0).tolist(), "max": np.nanmax(finite, axis=0).tolist(),
            "integer_valued": bool(np.all(np.mod(a[np.isfinite(a)], 1) == 0)),
            "features": int(a.shape[1]), "examples": int(a.shape[0])}


_NOT_TRANSFORMS = {"Normalization", "Rescaling", "Embedding", "StringLookup", "IntegerLookup", "TextVectorization",
                   "CategoryEncoding", "Hashing", "Discretization"}


def _first_weighted_input(io, sample, paths: dict, n: int, batch: int):
    """(layer, what it received over n examples) for the first layer with weights a call reaches; None if the
    first is a lookup or an embedding (ids, not measurements) or nothing could be observed."""
    weighted = {id(layer): path for path, layer in paths.values()
                if layer.weights and type(layer).__name__ not in SCALING_LAYERS}
    if not weighted:
        return None
    got, first = [], None
    for start in range(0, n, batch):
        x, _ = sample.take(np.arange(start, min(start + batch, n)))
        with Tap(weighted, inputs=True) as tap:
            io(x, training=False)
        if not tap.order:
            return None
        first = first or tap.order[0]
        calls = tap.inputs.get(first) or []
        if not calls or not calls[0]:
            return None
        got.append(np.asarray(calls[0][0], dtype=np.float64))
    layer = next(l for p, l in paths.values() if p == first)
    if type(layer).__name__ in _NOT_TRANSFORMS:
        return None
    return first, np.concatenate(got)


def _first_weighted(graph, start):
    """(first weighted layer reachable from `start`, the top-level layer feeding it) along the first path."""
    if graph is None or start is None:
        return None, None
    current, seen = start, set()
    while current not in seen:
        seen.add(current)
        consumers = graph.consumers(current)
        if not consumers:
            return None, None
        nxt = graph.by_qual[consumers[0]]
        if nxt.weights and nxt.class_name not in SCALING_LAYERS:  # BatchNormalization at the input scales it
            feeder = graph.by_qual[current]
            return nxt.qualname, (feeder.qualname if feeder.class_name != "InputLayer" else None)
        current = nxt.qualname
    return None, None
