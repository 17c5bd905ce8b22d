"""What the probes train with: the model's own loss and optimizer, exactly as it was compiled.

The loss is rebuilt by Keras's own deserializer from the saved compile config, with
the user's code (`--custom-objects`, or classes the calling program registered) for
custom losses; one loss per output for multi-output models. A model saved without a
loss trains the way `fit` would train it: through the losses its layers add
(`add_loss`) or through its own `train_step`; only a model with neither gets a loss
assumed from its output activation, and the report says so.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

from kerascheck.errors import TierUnavailable
from kerascheck.facts.build import loss_spec
from kerascheck.facts.topology import graph_of
from kerascheck.options import Options
from kerascheck.tiers.model import import_custom_objects
from kerascheck.tiers.modelio import zeros


# How labels for a loss look: "sparse" class ids, "onehot" rows, "binary" 0/1, "real" values,
# "match" (a custom loss: labels shaped and scaled like what the output produces).
LABEL_KINDS = {
    "sparse_categorical_crossentropy": "sparse", "categorical_crossentropy": "onehot",
    "categorical_focal_crossentropy": "onehot", "kl_divergence": "onehot", "categorical_hinge": "onehot",
    "binary_crossentropy": "binary", "binary_focal_crossentropy": "binary", "hinge": "binary",
    "squared_hinge": "binary",
}
CLASSIFICATION = {"sparse", "onehot", "binary"}


@dataclass
class OutputLoss:
    """The loss of one output."""
    name: str  # canonical name ("sparse_categorical_crossentropy") or the user's ("contrastive_loss")
    fn: object  # (y_true, y_pred) -> per-example or scalar loss
    from_logits: bool
    kind: str  # see LABEL_KINDS
    custom: bool = False
    weight: float = 1.0


@dataclass
class Setup:
    """The probes' loss and optimizer, and how a step trains the model."""
    # "loss" (kerascheck's step, compiled losses), "add_loss" (only the layers' losses), "train_step"
    # (the model's own), "none" (nothing to train with: the loss's code was not supplied)
    mode: str
    losses: list = field(default_factory=list)  # OutputLoss per output (mode "loss")
    defaults: list = field(default_factory=list)  # what had to be assumed, said in the report
    notes: list = field(default_factory=list)  # how the model was trained, said in the report
    opt_class: object = None
    opt_config: dict = field(default_factory=dict)
    learning_rate: float = 1e-3
    held: list = field(default_factory=list)  # (attribute, class name, rate) of optimizers the model holds itself
    compile_loss: bool = False  # its own train_step uses the compiled loss: compile it with the rebuilt one

    @property
    def loss_name(self) -> str:
        if self.mode == "none":
            return "no loss"
        if self.mode == "add_loss":
            return "the losses its layers add (add_loss)"
        if self.mode == "train_step":
            return "its own train_step"
        names = [l.name for l in self.losses]
        return names[0] if len(set(names)) == 1 else " + ".join(names)

    @property
    def from_logits(self) -> bool:
        return bool(self.losses) and self.losses[0].from_logits

    @property
    def task(self) -> str:
        """"classification" when every output is judged by its class predictions."""
        trained = [l for l in self.losses if l.name != "none"]  # an output compiled with loss None is not trained
        if self.mode == "loss" and trained and all(l.kind in CLASSIFICATION for l in trained):
            return "classification"
        return "regression" if self.mode == "loss" else "unknown"

    @property
    def needs_labels(self) -> bool:
        return self.mode == "loss"

    def record(self) -> dict:
        """How a probe step trains, for the machine formats."""
        return {"how": {"loss": "kerascheck's step with the compiled loss", "add_loss": "the losses its layers add",
                        "train_step": "the model's own train_step", "none": "nothing (no loss could be rebuilt)"}
                [self.mode],
                "losses": [{"loss": l.name, "from_logits": l.from_logits, "custom": l.custom, "weight": l.weight,
                            "labels": l.kind} for l in self.losses],
                "optimizer": getattr(self.opt_class, "__name__", None), "learning_rate": self.learning_rate}

    def compile_model(self, model, optimizer) -> None:
        """Compile the model with its rebuilt loss, for a train_step that calls compute_loss."""
        if not self.compile_loss or not self.losses:
            return
        fns = [l.fn for l in self.losses]
        weights = [l.weight for l in self.losses]
        try:
            model.compile(optimizer=optimizer, loss=fns[0] if len(fns) == 1 else fns,
                          loss_weights=None if all(w == 1.0 for w in weights) else weights)
        except TypeError:
            # A compile() of its own that builds its loss itself (KerasHub's RetinaNet takes box_loss and
            # classification_loss, and passes loss= on): its defaults are what the file was compiled with.
            model.compile(optimizer=optimizer)
            note = f"compiled through {type(model).__name__}.compile(optimizer=...), which builds its own loss"
            if note not in self.notes:
                self.notes.append(note)

    def make_held_optimizers(self) -> list:
        """[(attribute, optimizer)] made anew from the class and rate the file stored for each."""
        import keras

        out = []
        for attribute, class_name, rate in self.held:
            cls = getattr(keras.optimizers, class_name or "", None)
            if cls is not None:
                out.append((attribute, cls(learning_rate=rate) if rate is not None else cls()))
        return out

    def make_optimizer(self, learning_rate: float | None = None):
        cfg = dict(self.opt_config)
        if learning_rate is not None:
            cfg["learning_rate"] = float(learning_rate)
        return self.opt_class(**cfg)

    def total_loss(self, ys: list, preds: list):
        """The compiled loss over all outputs (a scalar tensor), as Keras sums it."""
        import tensorflow as tf

        total = None
        for loss, y, pred in zip(self.losses, ys, preds):
            y, pred = same_rank(tf.convert_to_tensor(y), pred)
            value = tf.reduce_mean(tf.cast(loss.fn(y, pred), tf.float32)) * loss.weight
            total = value if total is None else total + value
        return total


def same_rank(y, pred):
    """Labels and predictions at the same rank, as Keras's compiled loss makes them: labels (N,)
    for an output (N, 1) get their last axis, and the other way round (fit() accepts both)."""
    import tensorflow as tf

    ry, rp = len(y.shape), len(pred.shape)
    if ry == rp + 1 and y.shape[-1] == 1:
        if rp == 1:
            pred = tf.expand_dims(pred, -1)
        else:
            y = tf.squeeze(y, -1)
    elif rp == ry + 1 and pred.shape[-1] == 1:
        if ry == 1:
            y = tf.expand_dims(y, -1)
        else:
            pred = tf.squeeze(pred, -1)
    return y, pred


def make_setup(model, io, spec, options: Options) -> Setup:
    import keras

    setup = Setup(mode="loss")
    raw = _raw_compile(spec)
    loss_cfg = raw.get("loss") if raw else None
    custom = _custom_objects(options)
    if loss_cfg is not None:
        setup.losses = _losses(keras, loss_cfg, raw.get("loss_weights"), io, spec, custom, setup.notes)
        if own_train_step(model) or own_compute_loss(model):
            # Its train_step is what fit() runs: it may reshape the batch (a decoder's shifted targets)
            # before handing it to compute_loss, and a compute_loss of its own (a KerasHub detector's)
            # is the loss fit() minimises; so it runs as written, compiled with its own loss.
            setup.mode = "train_step"
            setup.compile_loss = True
            which = "train_step" if own_train_step(model) else "compute_loss (through Keras's train_step)"
            setup.notes.append(f"trained through {type(model).__name__}.{which}, as fit() does, with its "
                               "compiled loss")
    elif _adds_losses(model, io):
        setup.mode = "add_loss"
        setup.notes.append("no compiled loss: trained on the losses its layers add (add_loss), as fit() does")
    elif own_train_step(model) or own_compute_loss(model):
        # Keras's own train_step calls the model's compute_loss: a Distiller's loss lives there.
        setup.mode = "train_step"
        which = "train_step" if own_train_step(model) else "compute_loss (through Keras's train_step)"
        setup.notes.append(f"no compiled loss: trained through {type(model).__name__}.{which}, as fit() does")
        setup.held = [(o.attribute, o.class_name, o.learning_rate) for o in spec.optimizers
                      if o.attribute != "optimizer"]
    else:
        setup.losses = [_default_loss(keras, spec, io, i) for i in range(len(io.outputs))]
        setup.defaults.append(f"loss {setup.loss_name} (the file has no saved loss)")
    _optimizer(keras, setup, spec, raw, custom)
    return setup


def _custom_objects(options: Options) -> dict:

    return import_custom_objects(options.custom_objects) if options.custom_objects else {}


def _raw_compile(spec) -> dict | None:
    """The compile config as saved (.keras), or what a legacy .h5 training config says."""
    return spec.raw_compile if isinstance(spec.raw_compile, dict) else None


def _losses(keras, loss_cfg, weights_cfg, io, spec, custom: dict, notes: list) -> list:
    n = len(io.outputs)
    names = [p.name for p in io.outputs]
    if isinstance(loss_cfg, list):
        per_output = list(loss_cfg) + [None] * (n - len(loss_cfg))
    elif isinstance(loss_cfg, dict) and not isinstance(loss_cfg.get("class_name"), str):
        per_output = [loss_cfg.get(name) for name in names]
    else:
        per_output = [loss_cfg] * n
    if isinstance(weights_cfg, list):
        weights = [float(w) for w in weights_cfg] + [1.0] * (n - len(weights_cfg))
    elif isinstance(weights_cfg, dict):
        weights = [float(weights_cfg.get(name, 1.0)) for name in names]
    else:
        weights = [1.0] * n
    out = []
    for i, (cfg, weight) in enumerate(zip(per_output, weights)):
        if cfg is None:
            out.append(OutputLoss("none", lambda y, p: 0.0, False, "real", weight=0.0))  # trains nothing
            continue
        out.append(_one_loss(keras, cfg, custom, weight, notes))
    return out


def _innermost(exc: BaseException) -> str:
    """The message of the deepest cause: Keras wraps a loss's own TypeError in a long paragraph."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    text = " ".join(str(exc).split())
    found = re.search(r"Exception encountered: (.*)$", text)
    return (found.group(1) if found else text)[:200]


def _class_name(cfg) -> str | None:
    if isinstance(cfg, dict) and isinstance(cfg.get("class_name"), str):
        return (cfg.get("registered_name") or cfg["class_name"]).split(">")[-1]
    return None


def _supplied(cfg, custom: dict) -> bool:
    return _class_name(cfg) in custom


def loss_from_accepted_arguments(cfg, custom: dict):
    """The user's Loss class built from the saved config's keys its __init__ accepts (the config Keras
    writes has `reduction`, which a subclass taking only `name` refuses); None if that fails too."""
    cls = custom.get(_class_name(cfg) or "")
    if not inspect.isclass(cls):
        return None
    config = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return None  # it would have taken every key already
    try:
        return cls(**{k: v for k, v in config.items() if k in params and k != "self"})
    except Exception:
        return None


def _one_loss(keras, cfg, custom: dict, weight: float, notes: list) -> OutputLoss:

    parsed = loss_spec(cfg)
    name = parsed.name if parsed else str(cfg)
    try:
        if isinstance(cfg, str) and (cfg in custom or cfg.split(">")[-1] in custom):
            fn = custom.get(cfg) or custom[cfg.split(">")[-1]]
        elif isinstance(cfg, str):
            fn = keras.losses.get(cfg) if ">" not in cfg else keras.saving.get_registered_object(cfg, custom)
        else:
            fn = keras.saving.deserialize_keras_object(cfg, custom_objects=custom, safe_mode=True)
    except Exception as exc:
        fn, reason = None, f"{type(exc).__name__}: {_innermost(exc)}"
        fn = loss_from_accepted_arguments(cfg, custom)
        if fn is not None:
            notes.append(f"the loss {name!r} could not be rebuilt from its saved config as keras.models.load_model "
                         f"would ({reason}); the probes built it from the arguments its __init__ accepts")
    else:
        reason = "nothing by that name is registered"
    if fn is None or not callable(fn):
        if parsed is not None and parsed.custom and not _supplied(cfg, custom):
            raise TierUnavailable(f"the loss {name!r} is your code, which was not supplied: pass it with "
                                  f"--custom-objects FILE.py ({reason})")
        raise TierUnavailable(f"the loss {name!r} could not be rebuilt from its saved config, as "
                              f"keras.models.load_model would rebuild it ({reason})")
    module = getattr(fn, "__module__", None) or getattr(type(fn), "__module__", "") or ""
    is_custom = bool(parsed and parsed.custom) or not module.startswith(("keras", "tf_keras"))
    from_logits = bool(getattr(fn, "from_logits", False) or (parsed.from_logits if parsed else False))
    kind = "match" if is_custom else LABEL_KINDS.get(name, "real")
    return OutputLoss(name, fn, from_logits, kind, custom=is_custom, weight=weight)


def _default_loss(keras, spec, io, index: int) -> OutputLoss:

    act = "linear"
    if spec.outputs and index < len(spec.outputs):
        act = graph_of(spec).output_activation(spec.outputs[index])[0]
    if act == "softmax":
        return OutputLoss("sparse_categorical_crossentropy", keras.losses.SparseCategoricalCrossentropy(), False,
                          "sparse")
    if act == "sigmoid":
        return OutputLoss("binary_crossentropy", keras.losses.BinaryCrossentropy(), False, "binary")
    return OutputLoss("mean_squared_error", keras.losses.MeanSquaredError(), False, "real")


def _adds_losses(model, io) -> bool:
    """Whether calling the model in training mode makes its layers add losses (add_loss)."""
    try:
        io([zeros(p, 2) for p in io.inputs], training=True)
        return bool(model.losses)
    except Exception:
        return False


def own_compute_loss(model) -> bool:
    import keras

    base = getattr(keras.Model, "compute_loss", None)
    return getattr(type(model), "compute_loss", base) is not base


def own_train_step(model) -> bool:
    import keras

    base = getattr(keras.Model, "train_step", None)
    return getattr(type(model), "train_step", base) is not base


def _optimizer(keras, setup: Setup, spec, raw, custom: dict | None = None) -> None:
    custom = custom or {}
    opt = spec.compile.optimizer if spec.compile else None
    opt_raw = raw.get("optimizer") if raw else None
    cfg = opt_raw.get("config") if isinstance(opt_raw, dict) else None
    if opt is None or cfg is None:
        if isinstance(opt_raw, str):  # compile(optimizer="rmsprop")
            cls = getattr(keras.optimizers, {"rmsprop": "RMSprop", "sgd": "SGD", "adamw": "AdamW", "nadam": "Nadam",
                                             "adamax": "Adamax", "adagrad": "Adagrad", "adadelta": "Adadelta",
                                             "ftrl": "Ftrl", "lion": "Lion"}.get(opt_raw.lower(),
                                                                                  opt_raw.capitalize()), None)
            if cls is not None:
                setup.opt_class, setup.opt_config = cls, {}
                setup.learning_rate = float(cls().learning_rate.numpy())
                return
        setup.defaults.append("optimizer Adam(learning_rate=0.001) (the file has no saved optimizer)")
        setup.opt_class, setup.opt_config, setup.learning_rate = keras.optimizers.Adam, {"learning_rate": 1e-3}, 1e-3
        return
    setup.opt_class = getattr(keras.optimizers, opt.class_name, None)
    if setup.opt_class is None:
        raise TierUnavailable(f"optimizer {opt.class_name} is not a Keras optimizer kerascheck can rebuild")
    # Rebuilt from its config rather than restored: a compiled legacy .h5 optimizer
    # can fail on its first step ("Unknown variable").
    accepted = set(inspect.signature(setup.opt_class.__init__).parameters)
    setup.opt_config = {k: v for k, v in dict(cfg).items() if k in accepted and k != "name"}
    lr = setup.opt_config.get("learning_rate", 1e-3)
    if isinstance(lr, dict):
        schedule = _schedule(keras, lr, custom)
        setup.opt_config["learning_rate"] = schedule
        setup.learning_rate = float(schedule(0))
    else:
        setup.learning_rate = float(lr)


def _schedule(keras, cfg: dict, custom: dict):
    """The learning-rate schedule as saved, rebuilt with the user's code (a Transformer's warm-up)."""
    try:
        with keras.saving.custom_object_scope(custom):
            schedule = keras.optimizers.schedules.deserialize(cfg)
    except Exception as exc:
        schedule, reason = None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
    else:
        reason = "nothing by that name is known"
    if not callable(schedule):  # Keras hands back the class name of a schedule it cannot find
        name = cfg.get("class_name", "?")
        raise TierUnavailable(f"the learning-rate schedule {name!r} could not be rebuilt ({reason}); if it is your "
                              "code, pass it with --custom-objects FILE.py")
    return schedule
