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


def fine_tuning_rate_on_fresh_weights(tmp, fmt):
    """A KerasHub-style fine-tuning rate (5e-5) on weights trained two steps: the rate, not the model, fails."""
    import numpy as np

    m = keras.Sequential([keras.Input((16,)), layers.Dense(64, activation="relu"),
                          layers.Dense(4, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(5e-5), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    m.fit(rng.standard_normal((64, 16)), rng.integers(0, 4, 64), batch_size=32, epochs=1, verbose=0)
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
    bad("fine_tuning_rate_on_fresh_weights", fine_tuning_rate_on_fresh_weights,
        Expect(None, "warning", r"^At its own learning rate 5e-05 the model did not memorise 10 examples in 300 steps .*; "
                                r"at 0\.0005 it did, in \d+ steps: the rate is too low .* The weights look untrained "
                                r"\(the optimizer saved with them took 2 steps\)",
               {"memorised_at": (4.9e-4, 5.1e-4), "untrained": True, "steps_trained": 2})),
]
