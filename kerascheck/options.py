"""The check's options: what the user asked for beyond rule selection, from the CLI, the config
file or kerascheck.check()."""
from __future__ import annotations

from dataclasses import dataclass, field

# Seconds the probes of one model may take together. Probes run fixed numbers of steps, so the
# budget never shortens a verdict: it only stops a probe outright (its rules are then skipped).
DEFAULT_BUDGET = 300.0


@dataclass
class Options:
    """What the user asked for beyond rule selection (the CLI flags of the model and probe tiers)."""
    custom_objects: tuple[str, ...] = ()
    unsafe: bool = False
    data: str | None = None
    budget: float = DEFAULT_BUDGET
    device: str = "auto"
    seed: int = 0
    progress: bool = False
    layer_stats: bool = False  # collect per-layer weight statistics (the HTML report shows them)
    verbose: bool = False  # print the tracebacks of internal errors and TensorFlow's own messages
    fix_out: str | None = None  # --fix-out: the folder the repaired copies go to
    # Filled in by the engine once TensorFlow is set up.
    device_used: str | None = field(default=None, repr=False)
