import keras
import tensorflow as tf
from keras import layers, ops

from helpers import good, wrap

PKG = "kc_softmax_good"


@keras.saving.register_keras_serializable(package=PKG)
class StableSoftmax(layers.Layer):
    def call(self, x):
        e = ops.exp(x - ops.max(x, axis=-1, keepdims=True))
        return e / ops.sum(e, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PKG)
class TfStableSoftmax(layers.Layer):
    def call(self, x):
        shifted = x - tf.stop_gradient(tf.reduce_max(x, axis=-1, keepdims=True))
        return tf.exp(shifted) / tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PKG)
class Stable(layers.Layer):
    """The built-in stable forms, and exp of a bounded value."""

    def call(self, x):
        bounded = ops.exp(ops.tanh(x))
        return (ops.softmax(x) + ops.log_softmax(x) + ops.log_sigmoid(x) + ops.sigmoid(x)
                + bounded / ops.sum(bounded, axis=-1, keepdims=True))


@keras.saving.register_keras_serializable(package=PKG)
def clipped_crossentropy(y_true, y_pred):
    return -ops.mean(ops.sum(y_true * ops.log(ops.clip(y_pred, 1e-7, 1.0)), axis=-1))


def guarded_custom_loss(tmp, fmt):
    model = wrap(layers.Dense(3, activation="softmax", name="probs"))
    model.compile(optimizer="adam", loss=clipped_crossentropy)
    return model


CASES = [
    good("guarded_custom_loss", guarded_custom_loss),
    good("stable_softmax", lambda tmp, fmt: wrap(StableSoftmax(name="attn"))),
    good("tf_stable_softmax", lambda tmp, fmt: wrap(TfStableSoftmax(name="attn"))),
    good("builtins_and_bounded_exp", lambda tmp, fmt: wrap(Stable(name="stable"))),
    good("softmax_layer", lambda tmp, fmt: wrap(layers.Dense(4), layers.Softmax())),
    good("lambda_bounded_exp", lambda tmp, fmt: wrap(layers.Dense(4, activation="tanh"), layers.Lambda(
        lambda t: 2.718281828459045 ** t / (1.0 + 2.718281828459045 ** t), output_shape=(4,), name="lam")),
         options={"unsafe": True}),
]
