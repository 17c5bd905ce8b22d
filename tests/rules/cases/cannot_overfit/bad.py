import keras
from keras import layers

from helpers import Expect, bad


def softmax_over_one_unit(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"),
                          layers.Dense(1, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return m


def all_frozen(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu", trainable=False),
                          layers.Dense(3, activation="softmax", trainable=False)])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def rate_far_too_small(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-9), loss="mse")
    return m


CASES = [
    bad("softmax_over_one_unit", softmax_over_one_unit,
        Expect(None, "error", r"reached \d+% accuracy \(needs 100%; loss [\d.]+ -> [\d.e-]+\).*identical for all 10 examples",
               {"prediction_spread": (0.0, 1e-6)}),
        formats=("keras", "h5")),
    bad("all_frozen", all_frozen, Expect(None, "error", r"the model has no trainable weights")),
    bad("rate_far_too_small", rate_far_too_small,
        Expect(None, "error", r"brought the loss only from [\d.]+ to [\d.]+ \(needs < 1% of its start\).*the learning rate 1e-09 "
                              r"is far too small")),
]
