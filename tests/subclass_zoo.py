"""keras.Model subclasses and custom losses and heads, written the ways people write them.

Registered under the package "szoo", so a kerascheck process gets them with
`--custom-objects tests/subclass_zoo.py`.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

PACKAGE = "szoo"
register = keras.saving.register_keras_serializable(package=PACKAGE)


def _config(model, **extra):
    return {**keras.Model.get_config(model), **extra}


@register
class Attributes(keras.Model):
    """Layers held as attributes."""

    def __init__(self, units=16, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="relu")
        self.classifier = layers.Dense(3, activation="softmax", name="clf")

    def call(self, x):
        return self.classifier(self.hidden(x))

    def get_config(self):
        return _config(self, units=self.units)


@register
class ListOfLayers(keras.Model):
    def __init__(self, depth=3, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth
        self.blocks = [layers.Dense(16, activation="relu") for _ in range(depth)]
        self.head = layers.Dense(1)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def get_config(self):
        return _config(self, depth=self.depth)


@register
class DictOfLayers(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.branches = {"left": layers.Dense(8, activation="tanh"), "right": layers.Dense(8, activation="relu")}
        self.merge = layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.merge(ops.concatenate([self.branches["left"](x), self.branches["right"](x)], axis=-1))


@register
class HoldsFunctional(keras.Model):
    """A Functional model inside a subclass."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        inp = keras.Input((8,))
        self.encoder = keras.Model(inp, layers.Dense(12, activation="relu", name="enc_dense")(inp), name="encoder")
        self.out = layers.Dense(1, activation="sigmoid")

    def call(self, x):
        return self.out(self.encoder(x))


@register
class OwnTrainStep(keras.Model):
    """Overrides train_step (and is compiled with a loss)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(16, activation="relu")
        self.out = layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def subclass_in_functional():
    inner = Attributes(name="inner")
    inp = keras.Input((8,))
    return keras.Model(inp, layers.Dense(3, activation="softmax", name="top")(inner(inp)), name="outer")


# name -> (builder, loss, the labels it trains on)
ZOO = {
    "attributes": (lambda: Attributes(), "sparse_categorical_crossentropy", "classes"),
    "list_of_layers": (lambda: ListOfLayers(), "mse", "real"),
    "dict_of_layers": (lambda: DictOfLayers(), "sparse_categorical_crossentropy", "classes"),
    "holds_functional": (lambda: HoldsFunctional(), "binary_crossentropy", "binary"),
    "subclass_in_functional": (subclass_in_functional, "sparse_categorical_crossentropy", "classes"),
    "own_train_step": (lambda: OwnTrainStep(), "sparse_categorical_crossentropy", "classes"),
}


def data(kind: str, n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    if kind == "classes":
        return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)
    if kind == "binary":
        return x, (x[:, 0] > 0).astype("float32").reshape(-1, 1)
    return x, (x[:, :1] * 0.5 - x[:, 1:2]).astype("float32")


def trained(name: str):
    """A zoo model compiled and fitted for one epoch (Keras records its input shape then)."""
    keras.utils.set_random_seed(0)
    build, loss, kind = ZOO[name]
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    x, y = data(kind)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return model


# ------------------------------------------------ the same problems, written twice


@register
class ExpSoftmax(layers.Layer):
    """softmax written out, without subtracting the max: exp overflows."""

    def call(self, x):
        e = ops.exp(x)
        return e / ops.sum(e, axis=-1, keepdims=True)


@register
class SubclassExpSoftmax(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(16, activation="relu")
        self.logits = layers.Dense(4)

    def call(self, x):
        e = ops.exp(self.logits(self.hidden(x)))
        return e / ops.sum(e, axis=-1, keepdims=True)


@register
class Normalise(layers.Layer):
    def call(self, x):
        return x / ops.sum(x, axis=-1, keepdims=True)


@register
class SubclassNormalise(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(16, activation="relu")
        self.out = layers.Dense(4)

    def call(self, x):
        h = self.hidden(x)
        return self.out(h / ops.sum(h, axis=-1, keepdims=True))


@register
class Plain(keras.Model):
    """Dense layers as attributes, configured like the Functional twin."""

    def __init__(self, units=16, depth=1, activation="relu", out_units=1, out_activation=None, bias=0.0,
                 kernel="glorot_uniform", recurrent=False, **kwargs):
        super().__init__(**kwargs)
        self.cfg = dict(units=units, depth=depth, activation=activation, out_units=out_units,
                        out_activation=out_activation, bias=bias, kernel=kernel, recurrent=recurrent)
        self.rnn = layers.LSTM(units) if recurrent else None
        self.hidden = [layers.Dense(units, activation=activation, kernel_initializer=kernel,
                                    bias_initializer=keras.initializers.Constant(bias)) for _ in range(depth)]
        self.out = layers.Dense(out_units, activation=out_activation)

    def call(self, x):
        if self.rnn is not None:
            x = self.rnn(x)
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)

    def get_config(self):
        return _config(self, **self.cfg)


def functional_plain(units=16, depth=1, activation="relu", out_units=1, out_activation=None, bias=0.0,
                     kernel="glorot_uniform", recurrent=False, input_shape=(8,)):
    inp = keras.Input(input_shape)
    x = layers.LSTM(units)(inp) if recurrent else inp
    for _ in range(depth):
        x = layers.Dense(units, activation=activation, kernel_initializer=kernel,
                         bias_initializer=keras.initializers.Constant(bias))(x)
    return keras.Model(inp, layers.Dense(out_units, activation=out_activation)(x))


def twins(case: str):
    """(Functional model, equivalent subclass, compile kwargs, input shape) for a bad case."""
    if case == "unstable-softmax":
        inp = keras.Input((8,))
        f = keras.Model(inp, ExpSoftmax()(layers.Dense(4)(layers.Dense(16, activation="relu")(inp))))
        return f, SubclassExpSoftmax(), dict(loss="categorical_crossentropy"), (8,)
    if case == "risky-division":
        inp = keras.Input((8,))
        f = keras.Model(inp, layers.Dense(4)(Normalise()(layers.Dense(16, activation="relu")(inp))))
        return f, SubclassNormalise(), dict(loss="mse"), (8,)
    if case == "nan-in-training":
        kw = dict(units=16)
        return functional_plain(**kw), Plain(**kw), dict(loss="mse", optimizer=keras.optimizers.SGD(50.0)), (8,)
    if case == "cannot-overfit":
        f, s = functional_plain(), Plain()
        f.trainable = s.trainable = False
        return f, s, dict(loss="mse"), (8,)
    if case == "dead-units":
        kw = dict(units=32, bias=-100.0)
        return functional_plain(**kw), Plain(**kw), dict(loss="mse"), (8,)
    if case == "unhealthy-weights":
        kw = dict(units=16, kernel="zeros")
        return functional_plain(**kw), Plain(**kw), dict(loss="mse"), (8,)
    if case == "missing-rnn-clipping":
        kw = dict(units=8, depth=0, recurrent=True)
        return functional_plain(input_shape=(6, 4), **kw), Plain(**kw), \
            dict(loss="mse", optimizer=keras.optimizers.Adam(1e-2)), (6, 4)
    raise KeyError(case)


# ------------------------------------------------------------ custom losses and heads


@register
class LogLoss(keras.losses.Loss):
    """Takes the log of the prediction itself: NaN as soon as a linear output goes negative."""

    def call(self, y_true, y_pred):
        return ops.mean(ops.square(ops.log(y_pred) - y_true), axis=-1)


@register
class ClippedFocal(keras.losses.Loss):
    def __init__(self, gamma=2.0, **kwargs):
        super().__init__(**kwargs)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        ce = -(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
        weight = ops.power(ops.abs(y_true - p), self.gamma)
        return ops.mean(weight * ce, axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@register
def smooth_l1(y_true, y_pred):
    diff = ops.abs(y_true - y_pred)
    return ops.mean(ops.where(diff < 1.0, 0.5 * ops.square(diff), diff - 0.5), axis=-1)


@register
class StableSoftmax(layers.Layer):
    """A custom output layer that normalises to probabilities, stably (max subtracted)."""

    def call(self, x):
        e = ops.exp(x - ops.max(x, axis=-1, keepdims=True))
        return e / ops.sum(e, axis=-1, keepdims=True)


def custom_head(from_logits: bool):
    inp = keras.Input((8,))
    x = layers.Dense(16, activation="relu")(inp)
    out = StableSoftmax(name="head")(layers.Dense(4)(x))
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=from_logits))
    return model
