import keras
from keras import layers

from helpers import good


def plain_model(tmp, fmt):
    inp = keras.Input((4,))
    m = keras.Model(inp, layers.Dense(1)(layers.Dense(8, activation="gelu")(inp)))
    m.compile(optimizer="adam", loss="mse")
    return m


def lookup_with_inline_vocabulary(tmp, fmt):
    inp = keras.Input((1,), dtype="string")
    ids = layers.StringLookup(vocabulary=["a", "b", "c"])(inp)
    m = keras.Model(inp, layers.Dense(1)(layers.Embedding(5, 2)(ids)))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    good("plain_model", plain_model, formats=("keras", "h5")),
    good("lookup_with_inline_vocabulary", lookup_with_inline_vocabulary),
]
