import keras
from keras import layers

from helpers import Expect, bad


def constant_adam(tmp, fmt):
    m = keras.Sequential([keras.Input((4,)), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-4), loss="mse")
    return m


def uncompiled(tmp, fmt):
    return keras.Sequential([keras.Input((4,)), layers.Dense(1)])


CASES = [
    bad("constant_adam", constant_adam,
        Expect(None, "info", r"Adam trains at a constant learning rate of 0\.0003",
               {"learning_rate": (2.99e-4, 3.01e-4)}),
        formats=("keras", "h5")),
    bad("uncompiled", uncompiled, skipped=r"no saved optimizer"),
]
