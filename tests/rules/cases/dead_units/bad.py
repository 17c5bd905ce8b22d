import keras
from keras import layers

from helpers import Expect, bad


def _regression_data(tmp):
    import os

    import numpy as np

    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp), "data.npz")
    np.savez(path, x=rng.standard_normal((128, 8)).astype("float32"), y=rng.standard_normal((128, 1)))
    return path


def dead_relu(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)),
                          layers.Dense(64, activation="relu", bias_initializer=keras.initializers.Constant(-100.0),
                                       name="dead"),
                          layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def saturated_sigmoid(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)),
                          layers.Dense(32, activation="sigmoid", name="sat",
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=1000.0, seed=3)),
                          layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    # Measured on synthetic inputs, dead units are a hint (info); on the user's data, a warning.
    bad("dead_relu", dead_relu,
        Expect("dead", "info", r"^64 of 64 units \(100%\) in relu layer 'dead' are never active on 256 examples "
                               r"\(measured on synthetic data", {"dead": 64, "dead_share": 1.0}),
        formats=("keras", "h5")),
    bad("dead_relu_on_data", dead_relu,
        Expect("dead", "warning", r"^64 of 64 units \(100%\) in relu layer 'dead' are never active on 128 examples\.$",
               {"dead": 64, "dead_share": 1.0}),
        data=_regression_data),
    bad("saturated_sigmoid", saturated_sigmoid,
        Expect("sat", "info", r"units \(\d+%\) in sigmoid layer 'sat' are saturated", {"saturated_share": (0.5, 1.0)})),
]
