"""The facts of the `spec` tier: what a saved model says about itself.

Everything here comes from the archive alone, without TensorFlow or Keras, and
is immutable once read. Weights stay on disk until a rule asks for one tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np

@dataclass(frozen=True)
class WeightRef:
    """One weight tensor, read only when asked for."""

    name: str  # role such as "kernel", "bias", "gamma"; "var3" when unknown
    path: str  # where it lives in the file, for messages
    shape: tuple[int, ...]
    dtype: str
    reader: Callable[[], np.ndarray] = field(repr=False, compare=False)  # reads the whole tensor
    rows: Callable[[int, int], np.ndarray] | None = field(default=None, repr=False, compare=False)  # rows a:b

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def read(self) -> np.ndarray:
        return self.reader()

    def chunks(self, max_bytes: int) -> Iterator[np.ndarray]:
        """The tensor in slices along its first axis, each at most about max_bytes."""
        if self.rows is None or not self.shape or self.nbytes <= max_bytes:
            yield self.read()
            return
        row_bytes = max(self.nbytes // self.shape[0], 1)
        step = max(1, max_bytes // row_bytes)
        for start in range(0, self.shape[0], step):
            yield self.rows(start, min(start + step, self.shape[0]))


@dataclass(frozen=True)
class LayerSpec:
    name: str
    class_name: str
    module: str | None
    registered_name: str | None
    config: Mapping[str, Any]
    inbound: tuple[str, ...]  # names of producer layers in the same scope
    scope: tuple[str, ...]  # names of the enclosing nested models, outermost first
    weights: tuple[WeightRef, ...] = ()

    @property
    def qualname(self) -> str:
        """Unambiguous display name: Keras forbids '/' in layer names."""
        return "/".join(self.scope + (self.name,))

    @property
    def is_model(self) -> bool:
        return isinstance(self.config.get("layers"), list)

    @property
    def param_count(self) -> int:
        return sum(w.size for w in self.weights)

    def weight(self, name: str) -> WeightRef | None:
        for w in self.weights:
            if w.name == name:
                return w
        return None


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int | None, ...]  # with the batch dimension first
    dtype: str


@dataclass(frozen=True)
class OptimizerSpec:
    class_name: str
    config: Mapping[str, Any]
    learning_rate: float | None  # None when a schedule or unknown
    schedule: Mapping[str, Any] | None  # {"class_name", "config"} of a schedule
    clipnorm: float | None
    global_clipnorm: float | None
    clipvalue: float | None

    @property
    def clipped(self) -> bool:
        return any(v is not None for v in (self.clipnorm, self.global_clipnorm, self.clipvalue))


@dataclass(frozen=True)
class StoredOptimizer:
    """An optimizer whose state the weights file holds: the compiled one (`optimizer`) or one a
    subclass keeps as an attribute (a GAN's `d_optimizer`), with the steps it took."""

    attribute: str  # where the model holds it: "optimizer", "d_optimizer", "g_optimizer"
    class_name: str | None  # from the name Keras recorded ("adam_1" -> Adam); None when unknown
    iterations: int  # steps it applied
    learning_rate: float | None  # the rate stored with its state (None under a schedule)
    slots: int  # values of state it holds (moments and the like), never counted as parameters


@dataclass(frozen=True)
class LossSpec:
    name: str  # canonical snake_case, e.g. "categorical_crossentropy"
    from_logits: bool
    config: Mapping[str, Any]
    custom: bool = False  # the user's own function or Loss class, not one of Keras's


@dataclass(frozen=True)
class CompileSpec:
    optimizer: OptimizerSpec | None
    # One entry per model output, in output order; None where the output has no loss
    # or the loss is a custom object kerascheck does not know.
    losses: tuple[LossSpec | None, ...]


@dataclass(frozen=True)
class ModelSpec:
    path: str
    format: str  # "keras" or "h5"
    keras_version: str | None
    class_name: str
    name: str
    config: Mapping[str, Any]  # the model's full config, as read
    layers: tuple[LayerSpec, ...]  # every layer, nested ones included, in config order
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]  # qualnames of the layers producing the model outputs
    compile: CompileSpec | None
    notes: tuple[str, ...] = ()  # things the reader noticed (e.g. unexpected archive members)
    # The compile config as saved ({"optimizer", "loss", "loss_weights", ...}), for the probes,
    # which rebuild the loss with Keras; None when the model was saved uncompiled.
    raw_compile: Mapping[str, Any] | None = None
    # Every optimizer the weights file holds state for (.keras only; empty for .h5 and SavedModel).
    optimizers: tuple[StoredOptimizer, ...] = ()
    # The training config as saved (an .h5's attribute, a tf.keras SavedModel's metadata), whole:
    # a config can name code in any part of it, and unsafe-code reads all of it.
    training_config: Any = field(default=None, repr=False, compare=False)

    def stepped_optimizers(self) -> tuple[StoredOptimizer, ...]:
        """The stored optimizers that applied at least one step: the ones that really trained it."""
        return tuple(o for o in self.optimizers if o.iterations > 0)

    def held_optimizers(self) -> tuple[StoredOptimizer, ...]:
        """The optimizers the model holds itself (a GAN's d_optimizer, g_optimizer) when they, not the
        compiled one, took the training steps: a subclass with its own compile() stores the default
        optimizer of super().compile() in its compile config and never uses it."""
        stepped = self.stepped_optimizers()
        if not stepped or any(o.attribute == "optimizer" for o in stepped):
            return ()
        return stepped

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    def layer(self, qualname: str) -> LayerSpec | None:
        return self._by_qualname().get(qualname)

    def _by_qualname(self) -> dict[str, LayerSpec]:
        cache = self.__dict__.get("_qualname_cache")
        if cache is None:
            cache = {layer.qualname: layer for layer in self.layers}
            object.__setattr__(self, "_qualname_cache", cache)
        return cache
