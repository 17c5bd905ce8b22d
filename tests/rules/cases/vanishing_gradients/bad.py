import keras
from keras import layers

from helpers import Expect, bad


def deep_sigmoid(tmp, fmt, optimizer=None):
    m = keras.Sequential([keras.Input((16,))]
                         + [layers.Dense(32, activation="sigmoid", name=f"d{i}") for i in range(10)]
                         + [layers.Dense(1, name="out")])
    m.compile(optimizer=optimizer or keras.optimizers.SGD(0.01), loss="mse")
    return m


def deep_sigmoid_adam(tmp, fmt):
    # The same gradients, but Adam divides each by its own running scale: d0 still moves.
    return deep_sigmoid(tmp, fmt, keras.optimizers.Adam(1e-3))


def head_without_a_loss(tmp, fmt):
    # Two outputs compiled with loss=[..., None]: the second head is trained by nothing.
    inp = keras.Input((8,))
    h = layers.Dense(16, activation="relu", name="shared")(inp)
    m = keras.Model(inp, [layers.Dense(3, name="logits")(h), layers.Dense(4, name="aux_head")(h)])
    m.compile(optimizer="adam", loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), None])
    return m


CASES = [
    bad("deep_sigmoid", deep_sigmoid,
        Expect("d0", "warning", r"first weighted layer 'd0' is 1/[\d.e+]+ of the last layer's, 'out'",
               {"ratio_first_last": (0.0, 1e-3)}),
        formats=("keras", "h5")),
    bad("deep_sigmoid_adam", deep_sigmoid_adam,
        Expect("d0", "info", r"first weighted layer 'd0' is 1/[\d.e+]+ of the last layer's, 'out'.*The optimizer "
                             r"rescales them, though: each step still changes the kernel of 'd0' by [\d.e-]+ of its size",
               {"ratio_first_last": (0.0, 1e-3)})),
    bad("head_without_a_loss", head_without_a_loss,
        Expect("aux_head", "info", r"^1 trainable layer \('aux_head'\) got no gradient at all: the training step's "
                                   r"loss \(sparse_categorical_crossentropy \+ none\) does not use them",
               {"unused": ["aux_head"]})),
]
