import keras
from keras import layers

from helpers import good


def classifier(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu"),
                          layers.Dense(5, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return m


def regression(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="tanh"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return m


def binary_logits(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return m


CASES = [
    good("classifier", classifier, formats=("keras", "h5")),
    good("regression", regression),
    good("binary_logits", binary_logits),
]
