import keras
import tensorflow as tf
from keras import layers, ops

from helpers import Expect, bad, wrap

PKG = "kc_risky_bad"


@keras.saving.register_keras_serializable(package=PKG)
class SlashBySum(layers.Layer):
    def call(self, x):
        return x / ops.sum(x, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PKG)
class OpsDivideByNorm(layers.Layer):
    def call(self, x):
        norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
        return ops.divide(x, norm)


@keras.saving.register_keras_serializable(package=PKG)
class TfTruedivByMean(layers.Layer):
    def call(self, x):
        return tf.math.truediv(x, tf.reduce_mean(x, axis=-1, keepdims=True))


@keras.saving.register_keras_serializable(package=PKG)
class TfReciprocal(layers.Layer):
    def call(self, x):
        return tf.math.reciprocal(x)


@keras.saving.register_keras_serializable(package=PKG)
class OpsLog(layers.Layer):
    def call(self, x):
        return ops.log(x)


@keras.saving.register_keras_serializable(package=PKG)
class StandardizeNoEps(layers.Layer):
    def call(self, x):
        mean = ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) / ops.sqrt(var)


@keras.saving.register_keras_serializable(package=PKG)
class TfRsqrtVariance(layers.Layer):
    def call(self, x):
        return x * tf.math.rsqrt(tf.math.reduce_variance(x, axis=-1, keepdims=True))


@keras.saving.register_keras_serializable(package=PKG)
class ByLearnedScale(layers.Layer):
    """Divides by a weight: no input makes it zero, but training can."""

    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        return x / self.scale


@keras.saving.register_keras_serializable(package=PKG)
class ProjectThenNormalise(layers.Layer):
    def __init__(self, units=4, **kw):
        super().__init__(**kw)
        self.units = units
        self.proj = layers.Dense(units, activation="relu")

    def get_config(self):
        return {**super().get_config(), "units": self.units}

    def call(self, x):
        h = self.proj(x)
        return h / ops.sum(h, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PKG)
class RelativeError(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return ops.mean(ops.abs(y_true - y_pred) / ops.abs(y_true), axis=-1)


def custom_loss(tmp, fmt):
    model = wrap(layers.Dense(1, name="out"))
    model.compile(optimizer="adam", loss=RelativeError())
    return model


@keras.saving.register_keras_serializable(package=PKG)
def inverse_activation(x):
    return 1.0 / x


def custom_activation(tmp, fmt):
    return wrap(layers.Dense(4, activation=inverse_activation, name="inv_dense"))


def shared_layer(tmp, fmt):
    # One layer object called on two inputs: one layer, one finding.
    share = SlashBySum(name="share")
    a, b = keras.Input((8,), name="a"), keras.Input((8,), name="b")
    return keras.Model([a, b], layers.Concatenate()([share(a), share(b)]))


def dict_inputs(tmp, fmt):
    a, b = keras.Input((8,), name="a"), keras.Input((8,), name="b")
    return keras.Model({"b": b, "a": a}, SlashBySum(name="share")(layers.Subtract()([a, b])))


@keras.saving.register_keras_serializable(package=PKG)
class Ratio(keras.Model):
    """A subclassed model whose own call divides."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.dense = layers.Dense(4)

    def call(self, x):
        h = self.dense(x)
        return h / ops.mean(h, axis=-1, keepdims=True)


def subclassed_model(tmp, fmt):
    inp = keras.Input((8,))
    return keras.Model(inp, Ratio(name="ratio")(inp))


@keras.saving.register_keras_serializable(package=PKG)
class NegativePower(layers.Layer):
    def call(self, x):
        return ops.power(ops.abs(x), -0.5)


def slash(tmp, fmt):
    return wrap(SlashBySum(name="share"))


def ops_divide(tmp, fmt):
    return wrap(OpsDivideByNorm(name="unit"))


def tf_truediv(tmp, fmt):
    return wrap(TfTruedivByMean(name="rel"))


def reciprocal(tmp, fmt):
    return wrap(TfReciprocal(name="inv"))


def log(tmp, fmt):
    return wrap(OpsLog(name="logx"))


def sqrt_variance(tmp, fmt):
    return wrap(StandardizeNoEps(name="std"))


def rsqrt_variance(tmp, fmt):
    return wrap(TfRsqrtVariance(name="whiten"))


def learned_scale(tmp, fmt):
    return wrap(ByLearnedScale(name="scaled"))


def sub_layer(tmp, fmt):
    return wrap(ProjectThenNormalise(name="proj_norm"))


def nested(tmp, fmt):
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, StandardizeNoEps(name="std")(layers.Dense(8, name="d")(inner_in)), name="block")
    inp = keras.Input((8,))
    return keras.Model(inp, layers.Dense(2, name="head")(inner(inp)))


@keras.saving.register_keras_serializable(package=PKG)
class NonPaddingMean(keras.losses.Loss):
    """keras-io's ner_transformers.py: the mean over the labels that are not padding (0)."""

    def call(self, y_true, y_pred):
        per_token = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        mask = ops.cast(y_true > 0, "float32")
        return ops.sum(per_token * mask) / ops.sum(mask)


def non_padding_mean(tmp, fmt):
    inp = keras.Input((6,), dtype="int32")
    model = keras.Model(inp, layers.Dense(4, name="tags")(layers.Embedding(20, 8)(inp)))
    model.compile(optimizer="adam", loss=NonPaddingMean())
    return model


CASES = [
    bad("slash", slash, Expect("share", "error", r"Layer 'share' \(SlashBySum\) divides by `sum\(input\)`.*"
                                                 r"at \S*bad\.py:\d+: `return x / ops\.sum.*Confirmed: an all-zero "
                                                 r"input gives NaN", {"op_type": "RealDiv", "form": "division"})),
    bad("ops_divide", ops_divide, Expect("unit", "error", r"divides by `sqrt\(sum\(square\(input\)\)\)`.*ops\.divide"
                                                         r".*Confirmed: an all-zero input gives NaN")),
    bad("tf_truediv", tf_truediv, Expect("rel", "error", r"divides by `mean\(input\)`.*tf\.math\.truediv.*Confirmed")),
    bad("reciprocal", reciprocal, Expect("inv", "error", r"reciprocal of `input`.*Confirmed: an all-zero input gives Inf",
                                         {"form": "reciprocal", "op_type": "Reciprocal"})),
    bad("log", log, Expect("logx", "error", r"takes the log of `input`.*Confirmed: a synthetic sample gives NaN",
                           {"form": "log"})),
    bad("sqrt_variance", sqrt_variance,
        Expect("std", "error", r"divides by `sqrt\(mean\(square\(input - mean\(input\)\)\)\)`.*Confirmed: an all-zero "
                               r"input gives NaN there \(also a constant row", {"form": "division"})),
    bad("rsqrt_variance", rsqrt_variance, Expect("whiten", "error", r"takes rsqrt of .*Confirmed", {"form": "rsqrt"})),
    bad("learned_scale", learned_scale,
        Expect("scaled", "warning", r"divides by `weight 'scaled/scale'`.*Not confirmed by the inputs tried "
                                    r"\(a synthetic sample, an all-zero input, a constant row, the sample x1e3, "
                                    r"the sample x1e4\)", {"confirmed_by": []})),
    bad("sub_layer", sub_layer, Expect("proj_norm", "error", r"divides by `sum\(dense_\d+\(…\)\)`.*Confirmed")),
    bad("custom_loss", custom_loss,
        Expect(None, "error", r"The loss 'RelativeError' divides by `abs\(y_true\)`.*at \S*bad\.py:\d+: "
                              r"`return ops\.mean\(ops\.abs\(y_true - y_pred\) / ops\.abs\(y_true\).*Confirmed: a label of 0 "
                              r"gives (Inf|NaN) there")),
    # 0/0 only when a whole batch is padding: a hazard, not what the labels in hand do.
    bad("non_padding_mean", non_padding_mean,
        Expect(None, "warning", r"The loss 'NonPaddingMean' divides by `sum\(greater\(y_true, 0\)\)`.*"
                                r"Confirmed only with labels that are all 0: such a batch \(nothing but padding, or one "
                                r"class\) gives NaN there")),
    bad("negative_power", lambda tmp, fmt: wrap(NegativePower(name="invsqrt")),
        Expect("invsqrt", "error", r"raises `abs\(input\)` to a negative power.*Confirmed: an all-zero input gives Inf",
               {"form": "power", "op_type": "Pow"})),
    bad("custom_activation", custom_activation,
        Expect("inv_dense", "error", r"Layer 'inv_dense' \(Dense\) divides by `matmul\(input, weight 'inv_dense/kernel'\) "
                                     r"\+ weight 'inv_dense/bias'`.*at \S*bad\.py:\d+: `return 1\.0 / x`.*Confirmed: "
                                     r"an all-zero input gives Inf")),
    bad("shared_layer", shared_layer, Expect("share", "error", r"Layer 'share' \(SlashBySum\) divides by `sum\(input\)`")),
    bad("dict_inputs", dict_inputs, Expect("share", "error", r"divides by `sum\(input\)`.*Confirmed: an all-zero input")),
    bad("subclassed_model", subclassed_model,
        Expect("ratio", "error", r"Layer 'ratio' \(Ratio\) divides by `mean\(dense_\d+\(…\)\)`")),
    bad("nested", nested, Expect("block/std", "error", r"Layer 'block/std' \(StandardizeNoEps\) divides by "
                                                       r"`sqrt\(mean\(square\(")),
]
