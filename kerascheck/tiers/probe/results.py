"""What the probe tier measured on one model, and its record for the machine formats."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from kerascheck.tiers.probe.train import TrainRun


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
    budget: float = 0.0  # the --budget the probes ran under, in seconds
    cut: list = field(default_factory=list)  # what the budget cut, said in the report
    budget_cut: dict = field(default_factory=dict)  # probe -> why the budget kept it from its verdict
    cut_runs: dict = field(default_factory=dict)  # probe -> the TrainRun the budget stopped (for the record)
    input_stats: list = field(default_factory=list)  # per model input, from --data only
    target_stats: dict | None = None  # from --data y only
    failures: dict = field(default_factory=dict)  # probe -> why it could not run
    not_applicable: dict = field(default_factory=dict)  # probe -> why it does not apply (said as it stands)
    meanings: list = field(default_factory=list)  # per output, as measured
    label_kinds: list = field(default_factory=list)  # per output: how its labels look
    learning_rate: float | None = None  # the configured rate at step 0
    output_units: list = field(default_factory=list)  # last dimension of each output
    synthetic_labels: bool = False  # --data without labels: the labels were made up
    inputs_drawn: list = field(default_factory=list)  # per input: how synthetic values were drawn
    training: dict = field(default_factory=dict)  # how a probe step trains: mode, losses, optimizer
    runs: list = field(default_factory=list)  # (probe, TrainRun) in the order they ran
    interventions: list = field(default_factory=list)  # fixes re-run to prove a cause: change, for, seconds

    def record(self) -> dict:
        """What the probes did, for the machine formats: data, loss, optimizer, steps, cuts, failures."""
        runs = []
        for name, run in self.runs:
            if isinstance(run, TrainRun):
                runs.append({"probe": name, "learning_rate": run.learning_rate, "steps_planned": run.steps_planned,
                             "steps_done": run.steps_done, "diverged_at": run.diverged_at, "cut_by_budget": run.cut,
                             "first_loss": _finite(run.losses[0]) if run.losses else None,
                             "last_loss": _finite(run.losses[-1]) if run.losses else None})
        return {
            "device": self.device,
            "seconds": round(self.seconds, 2),
            "budget": self.budget,
            "data": {"description": self.data_description, "synthetic_inputs": self.synthetic,
                     "synthetic_labels": self.synthetic_labels, "inputs": list(self.inputs_drawn)},
            "training": {"how": "no probe training", "losses": [], "optimizer": None, "learning_rate": None,
                         **self.training, "assumed": list(self.defaults), "notes": list(self.notes)},
            "runs": runs,
            "cut_by_budget": dict(self.budget_cut),
            "failed": dict(self.failures),
            "not_applicable": dict(self.not_applicable),
            "interventions": list(self.interventions),
        }


def _finite(v) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else str(v).lower()
