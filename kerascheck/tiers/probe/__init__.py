"""The `probe` tier: short, budgeted runs of the loaded model that rules read as evidence.

The engine builds one ProbeResults per model, once, however many probe rules are
selected (ruff builds its semantic model once; rules query it). Every run starts
from the weights as loaded: the model object is kerascheck's own copy, loaded from
the file, and the file itself is never written.

Each probe is isolated: one that fails records why in `failures` and only the rules
that need it are skipped with that reason; the others keep their evidence.

* `run`: `prepare` (a loaded model's inputs, outputs, layer names, input roles and output
  meanings: ModelInfo) and `run_probes`, the way in;
* `setup` (loss, optimizer, how a step trains), `data` (--data and synthetic examples), `roles`
  (what inputs mean), `train` (the training runs), `measure` (what a run measured);
* `forward`: the probes of a runnable with nothing to train (a SavedModel's signature);
* `results`: ProbeResults; `gradients`, `evidence`: what the rules read from them.

Nothing here is imported by the package itself, so a rule reading `gradients` imports no more.
"""
