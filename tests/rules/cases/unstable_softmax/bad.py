import keras
import tensorflow as tf
from keras import layers, ops

from helpers import Expect, bad, wrap

PKG = "kc_softmax_bad"


@keras.saving.register_keras_serializable(package=PKG)
class OpsSoftmax(layers.Layer):
    def call(self, x):
        e = ops.exp(x)
        return e / ops.sum(e, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PKG)
class TfSoftmax(layers.Layer):
    def call(self, x):
        return tf.exp(x) / tf.reduce_sum(tf.exp(x), axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PKG)
class LogOfSoftmax(layers.Layer):
    def call(self, x):
        return ops.log(ops.softmax(x, axis=-1))


@keras.saving.register_keras_serializable(package=PKG)
class LogOfSigmoid(layers.Layer):
    def call(self, x):
        return tf.math.log(tf.sigmoid(x))


@keras.saving.register_keras_serializable(package=PKG)
class HandSigmoid(layers.Layer):
    def call(self, x):
        return ops.exp(x) / (1.0 + ops.exp(x))


@keras.saving.register_keras_serializable(package=PKG)
def hand_crossentropy(y_true, y_pred):
    return -ops.mean(ops.sum(y_true * ops.log(y_pred), axis=-1))


def custom_loss(tmp, fmt):
    model = wrap(layers.Dense(3, activation="softmax", name="probs"))
    model.compile(optimizer="adam", loss=hand_crossentropy)
    return model


def lambda_sigmoid(tmp, fmt):
    # Keras loads a Lambda's bytecode without the globals it was written with, so a
    # Lambda that loads at all uses operators only: e ** t is its exp.
    return wrap(layers.Dense(4, name="scores"),
                 layers.Lambda(lambda t: 2.718281828459045 ** t / (1.0 + 2.718281828459045 ** t),
                               output_shape=(4,), name="lam"))


def nested(tmp, fmt):
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, OpsSoftmax(name="attn")(inner_in), name="head")
    return wrap(layers.Dense(4, name="scores"), inner)


CASES = [
    bad("ops_softmax", lambda tmp, fmt: wrap(OpsSoftmax(name="attn")),
        Expect("attn", "error", r"Layer 'attn' \(OpsSoftmax\) computes a softmax as exp\(x\) / `sum\(exp\(input\)\)` "
                                r"without subtracting the maximum.*at \S*bad\.py:\d+: `return e / ops\.sum.*"
                                r"Confirmed: the sample x1e3 gives NaN", {"form": "softmax", "op_type": "RealDiv"})),
    bad("tf_softmax", lambda tmp, fmt: wrap(TfSoftmax(name="attn")),
        Expect("attn", "error", r"computes a softmax.*tf\.exp\(x\) / tf\.reduce_sum.*Confirmed: the sample x1e3")),
    bad("log_of_softmax", lambda tmp, fmt: wrap(LogOfSoftmax(name="logp")),
        Expect("logp", "error", r"takes the log of a probability \(`softmax\(input\)`\).*Confirmed: the sample x1e3 "
                                r"gives Inf", {"form": "log-probability"})),
    bad("log_of_sigmoid", lambda tmp, fmt: wrap(LogOfSigmoid(name="logp")),
        Expect("logp", "error", r"log of a probability \(`sigmoid\(input\)`\).*Confirmed")),
    bad("hand_sigmoid", lambda tmp, fmt: wrap(HandSigmoid(name="gate")),
        Expect("gate", "error", r"feeds exp of an unbounded value \(`input`\) into a division.*Confirmed: the sample "
                                r"x1e3 gives NaN", {"form": "exp-division"})),
    bad("lambda_unsafe", lambda_sigmoid, Expect("lam", "error", r"Layer 'lam' \(Lambda\) feeds exp of an unbounded "
                                                                r"value \(`input`\) into a division.*Confirmed: the "
                                                                r"sample x1e3 gives NaN"),
        options={"unsafe": True}),
    bad("lambda_refused", lambda_sigmoid,
        skipped=r"the Lambda layer 'lam' could not be inspected safely: .*only with --unsafe"),
    bad("custom_loss", custom_loss,
        Expect(None, "error", r"The loss 'hand_crossentropy' takes the log of a probability \(`y_pred`\).*"
                              r"Confirmed: the sample x1e3 gives Inf")),
    bad("nested", nested, Expect("head/attn", "error", r"Layer 'head/attn' \(OpsSoftmax\) computes a softmax")),
]
