import keras
import tensorflow as tf
from keras import layers, ops

from helpers import good, wrap

PKG = "kc_risky_good"


@keras.saving.register_keras_serializable(package=PKG)
class PlusEps(layers.Layer):
    def call(self, x):
        return x / (ops.sum(ops.abs(x), axis=-1, keepdims=True) + 1e-7)


@keras.saving.register_keras_serializable(package=PKG)
class Maximum(layers.Layer):
    def call(self, x):
        norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
        return ops.divide(x, ops.maximum(norm, 1e-6))


@keras.saving.register_keras_serializable(package=PKG)
class DivideNoNan(layers.Layer):
    def call(self, x):
        return tf.math.divide_no_nan(x, tf.reduce_sum(x, axis=-1, keepdims=True))


@keras.saving.register_keras_serializable(package=PKG)
class StandardizeEps(layers.Layer):
    def call(self, x):
        mean = ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) / ops.sqrt(var + 1e-5) + tf.math.rsqrt(tf.math.reduce_variance(x) + 1e-3)


@keras.saving.register_keras_serializable(package=PKG)
class Guards(layers.Layer):
    """Guards that are not an epsilon: clip, where(), a constant, softplus + eps, a dimension size."""

    def call(self, x):
        s = ops.sum(x, axis=-1, keepdims=True)
        safe = ops.where(s == 0, ops.ones_like(s), s)
        clipped = ops.clip(ops.abs(x), 1e-6, 1e6)
        return (x / safe + ops.log(clipped) + x / 255.0 + ops.log(ops.softplus(x) + 1e-6)
                + x / ops.cast(ops.shape(x)[-1], x.dtype) + ops.log(ops.exp(ops.tanh(x)))
                + ops.power(ops.abs(x) + 1e-3, -0.5) + x / (ops.exp(x) + 1e-6) + ops.square(x) ** 2)


@keras.saving.register_keras_serializable(package=PKG)
class OpsSoftmax(layers.Layer):
    def call(self, x):
        return ops.softmax(x, axis=-1)


@keras.saving.register_keras_serializable(package=PKG)
class KerasOps(layers.Layer):
    """keras.ops functions that guard themselves (normalize clamps rsqrt(sum(x^2)) at 1/eps
    after the fact), in forms the analysis need not know."""

    def call(self, x):
        mean, var = ops.moments(x, axes=[0])
        return (ops.logsumexp(x, axis=-1, keepdims=True) + ops.sparsemax(x) + ops.rms_normalization(x)
                + ops.layer_normalization(x) + ops.log_softmax(x) + ops.normalize(x, axis=-1)
                + x * ops.minimum(ops.rsqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), 1e6)
                + ops.batch_normalization(x, mean, var, axis=-1, epsilon=1e-3))


def plus_eps(tmp, fmt):
    return wrap(PlusEps(name="share"))


def maximum(tmp, fmt):
    return wrap(Maximum(name="unit"))


def divide_no_nan(tmp, fmt):
    return wrap(DivideNoNan(name="rel"))


def standardize_eps(tmp, fmt):
    return wrap(StandardizeEps(name="std"))


def other_guards(tmp, fmt):
    return wrap(Guards(name="guards"))


def builtin_layer_norm(tmp, fmt):
    return wrap(layers.Dense(8), layers.LayerNormalization(), layers.BatchNormalization())


def builtin_softmax_layer(tmp, fmt):
    return wrap(layers.Dense(4), layers.Softmax())


def ops_softmax(tmp, fmt):
    return wrap(layers.Dense(4), OpsSoftmax(name="probs"))


CASES = [
    good("plus_eps", plus_eps),
    good("keras_ops", lambda tmp, fmt: wrap(KerasOps(name="ops_mix"))),
    good("maximum", maximum),
    good("divide_no_nan", divide_no_nan),
    good("standardize_eps", standardize_eps),
    good("other_guards", other_guards),
    good("builtin_layer_norm", builtin_layer_norm),
    good("builtin_softmax_layer", builtin_softmax_layer),
    good("ops_softmax", ops_softmax),
]
