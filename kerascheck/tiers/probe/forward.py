"""The probe tier for a runnable that cannot train (a SavedModel's serving function): the
forward-pass probes only. The training probes' rules are skipped with the reason
(ProbeResults.not_applicable), which the engine reports as it stands.
"""
from __future__ import annotations

import os
import time

import numpy as np

from kerascheck.errors import error_line
from kerascheck.formats.savedmodel.serving import ModelError, runnable_sample
from kerascheck.tiers.probe.results import ProbeResults

TRAINING_REASON = "a SavedModel keeps no optimizer or loss to train with; kerascheck only runs its serving signature"


def run_forward_probes(model, spec, options, want: set) -> ProbeResults:
    """batch-dependence from calls of the signature; every training probe not applicable."""
    started = time.monotonic()
    failure, batch, drawn = None, None, []
    description, synthetic = "no examples", options.data is None
    try:
        sample, description, synthetic, drawn = runnable_sample(model, spec, options)
        batch = _batch_dependence(model, sample) if "batch" in want else None
    except ModelError as exc:
        failure = f"the signature could not be run: {exc}"
    except Exception as exc:  # TensorFlow refusing the graph is a fact about the folder
        if os.environ.get("KERASCHECK_DEBUG"):
            raise

        failure = f"the signature could not be run: {error_line(exc)}"
    results = ProbeResults(
        device=options.device_used or "CPU", synthetic=synthetic,
        data_description=f"{description}, through signature '{spec.saved.serving.key}'",
        defaults=[], loss_name="", task="regression", batch=batch)
    results.inputs_drawn = drawn
    if failure:
        results.failures["batch"] = failure
    # The engine skips each rule whose probe is listed here, with this reason as it stands.
    results.not_applicable = {need: TRAINING_REASON for need in ("train", "overfit", "activations", "data")}
    results.seconds = time.monotonic() - started
    return results


def _batch_dependence(model, xs: list) -> dict:
    """The batch-dependence probe through the signature: whole batch, one at a time, shuffled."""
    n = len(xs[0])
    whole = [np.asarray(o, dtype=np.float64) for o in model.run(xs)[0]]
    singles = [model.run([x[i:i + 1] for x in xs])[0] for i in range(n)]
    single = [np.concatenate([np.asarray(s[k], dtype=np.float64) for s in singles]) for k in range(len(whole))]
    shuffled = whole
    if n > 2:  # two examples: one at a time already tells whether they see each other
        perm = np.random.default_rng(7).permutation(n)
        shuffled = []
        for k, out in enumerate(model.run([x[perm] for x in xs])[0]):
            back = np.empty_like(whole[k])
            back[perm] = np.asarray(out, dtype=np.float64)
            shuffled.append(back)
    scale = 1.0 + max(float(np.max(np.abs(w))) if w.size else 0.0 for w in whole)
    diff = lambda a, b: max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b))
    return {"examples": n, "max_diff_single": diff(whole, single), "max_diff_shuffled": diff(whole, shuffled),
            "tolerance": 1e-4 * scale, "first_layer": None,
            "outputs_finite": all(bool(np.all(np.isfinite(w))) for w in whole)}
