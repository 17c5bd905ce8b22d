"""Skip reasons for the rules a SavedModel cannot feed (kept free of TensorFlow imports: results travel
between processes and are unpickled where TensorFlow is never imported)."""
from __future__ import annotations

TRAINING_REASON = "a SavedModel keeps no optimizer or loss to train with; kerascheck only runs its serving signature"


class SavedModelSkips(list):
    """ModelResult.skipped for a SavedModel folder.

    The training rules raise Skip with reasons written for Keras models ("the model
    has no trainable weights"); for a SavedModel the reason is that there is nothing
    to train with, and that is what the report says. Pickles as a plain list.
    """

    def __init__(self, items=(), rules=frozenset(), reason: str = TRAINING_REASON):
        super().__init__(items)
        self.rules = frozenset(rules)
        self.reason = reason

    def append(self, item) -> None:
        if isinstance(item, dict) and item.get("rule") in getattr(self, "rules", ()):
            item = {**item, "reason": self.reason}
        super().append(item)

    def __reduce__(self):
        return list, (list(self),)
