import keras
from keras import layers

from helpers import good


def _conv_after(first):
    inp = keras.Input((32, 32, 3))
    x = first(inp)
    m = keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(x))))
    m.compile(optimizer="adam", loss="mse")
    return m


def tabular(tmp, fmt):
    inp = keras.Input((10,))
    m = keras.Model(inp, layers.Dense(1)(inp))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    good("rescaling_first", lambda t, f: _conv_after(layers.Rescaling(1 / 255)), formats=("keras", "h5")),
    good("normalization_first", lambda t, f: _conv_after(layers.Normalization(mean=0.5, variance=0.1))),
    good("tabular_input", tabular),
]
