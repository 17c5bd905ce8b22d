import keras
from keras import layers, ops

from helpers import Expect, bad


@keras.saving.register_keras_serializable(package="kctests")
class BatchCentre(layers.Layer):
    """Subtracts the batch mean: every output depends on the rest of the batch."""

    def call(self, x):
        return x - ops.mean(x, axis=0, keepdims=True)


def batch_centred(tmp, fmt):
    inp = keras.Input((8,))
    x = layers.Dense(16, activation="relu", name="hidden")(inp)
    x = BatchCentre(name="centre")(x)
    m = keras.Model(inp, layers.Dense(1, name="out")(x))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    bad("batch_centred", batch_centred,
        Expect("centre", "error", r"outputs up to [\d.e-]+ apart alone \(batch size 1\) and inside a batch of 8.*"
                                  r"first part in layer 'centre'", {"first_layer": "centre"})),
]
