import keras
from keras import layers

from helpers import Expect, bad


def deep_sigmoid(tmp, fmt):
    m = keras.Sequential([keras.Input((16,))]
                         + [layers.Dense(32, activation="sigmoid", name=f"d{i}") for i in range(10)]
                         + [layers.Dense(1, name="out")])
    m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return m


CASES = [
    bad("deep_sigmoid", deep_sigmoid,
        Expect("d0", "warning", r"first weighted layer 'd0' is 1/[\d.e+]+ of the last layer's, 'out'",
               {"ratio_first_last": (0.0, 1e-3)}),
        formats=("keras", "h5")),
]
