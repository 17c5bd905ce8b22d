import keras
from keras import layers

from helpers import Expect, bad


def _mlp(head, loss, units_in=8):
    inp = keras.Input((units_in,))
    x = layers.Dense(16, activation="relu")(inp)
    for layer in head:
        x = layer(x)
    m = keras.Model(inp, x)
    m.compile(optimizer="adam", loss=loss)
    return m


def softmax_from_logits(tmp, fmt):
    return _mlp([layers.Dense(5, activation="softmax", name="probs")],
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def activation_layer_then_dropout(tmp, fmt):
    return _mlp([layers.Dense(5, name="logits"), layers.Activation("softmax", name="act"),
                 layers.Dropout(0.1, name="drop")],
                keras.losses.CategoricalCrossentropy(from_logits=True))


def linear_with_probability_loss(tmp, fmt):
    return _mlp([layers.Dense(3, name="scores")], "categorical_crossentropy")


def softmax_single_unit(tmp, fmt):
    return _mlp([layers.Dense(1, activation="softmax", name="yes")], "binary_crossentropy")


def sigmoid_with_categorical(tmp, fmt):
    return _mlp([layers.Dense(6, activation="sigmoid", name="multi")], "categorical_crossentropy")


def softmax_with_binary(tmp, fmt):
    return _mlp([layers.Dense(4, activation="softmax", name="tags")], "binary_crossentropy")


def nested_softmax_output(tmp, fmt):
    head_in = keras.Input((16,))
    head = keras.Model(head_in, layers.Dense(3, activation="softmax", name="probs")(head_in), name="head")
    inp = keras.Input((8,))
    m = keras.Model(inp, head(layers.Dense(16)(inp)))
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def two_outputs_one_wrong(tmp, fmt):
    inp = keras.Input((8,))
    x = layers.Dense(16, activation="relu")(inp)
    cls = layers.Dense(4, activation="softmax", name="cls")(x)
    reg = layers.Dense(1, name="reg")(x)
    m = keras.Model(inp, {"cls": cls, "reg": reg})
    m.compile(optimizer="adam", loss={"cls": keras.losses.CategoricalCrossentropy(from_logits=True),
                                      "reg": "mse"})
    return m


@keras.saving.register_keras_serializable(package="kctests")
class OneUnitSoftmaxHead(layers.Layer):
    """keras-io's endpoint_layer_pattern.py returns tf.nn.softmax of a (batch, 1) logit."""

    def call(self, logits):
        return keras.ops.softmax(logits)


def custom_layer_softmax_over_one_unit(tmp, fmt):
    inp = keras.Input((8,))
    logits = layers.Dense(1, name="logit")(layers.Dense(16, activation="relu")(inp))
    m = keras.Model(inp, OneUnitSoftmaxHead(name="head")(logits))
    m.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return m


CASES = [
    bad("softmax_from_logits", softmax_from_logits,
        Expect("probs", "error", r"already applies softmax in 'probs'.*from_logits=True",
               {"activation": "softmax", "units": 5, "from_logits": True}),
        formats=("keras", "h5")),
    bad("activation_layer_then_dropout", activation_layer_then_dropout,
        Expect("act", "error", r"Output 'drop' already applies softmax in 'act'", {"units": 5})),
    bad("linear_with_probability_loss", linear_with_probability_loss,
        Expect("scores", "error", r"is linear \(not a probability\).*categorical_crossentropy"),
        formats=("keras", "h5")),
    bad("softmax_single_unit", softmax_single_unit,
        Expect("yes", "error", r"softmax over a single unit", {"units": 1})),
    bad("sigmoid_with_categorical", sigmoid_with_categorical,
        Expect("multi", "warning", r"sigmoid over 6 units", {"units": 6})),
    bad("softmax_with_binary", softmax_with_binary,
        Expect("tags", "warning", r"softmax over 4 units.*binary_crossentropy")),
    bad("nested_softmax_output", nested_softmax_output,
        Expect("head/probs", "error", r"already applies softmax in 'head/probs'")),
    bad("two_outputs_one_wrong", two_outputs_one_wrong,
        Expect("cls", "error", r"Output 'cls' already applies softmax")),
    # Measured, not read: the custom layer's output is 1.0 on every example.
    bad("custom_layer_softmax_over_one_unit", custom_layer_softmax_over_one_unit,
        Expect("head", "error", r"^Layer 'head' outputs exactly 1\.0 for every example, as a softmax over a single "
                                r"unit does: its custom layer OneUnitSoftmaxHead gives exactly 1\.0")),
]
