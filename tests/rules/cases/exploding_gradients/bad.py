import os

import keras
import numpy as np
from keras import layers

from helpers import Expect, bad


def mlp(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(1e-5), loss="mse")
    return m


def one_outlier(tmp):
    # 255 ordinary examples and one whose features are 100x larger: every batch that
    # holds it has a gradient hundreds of times the usual one.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype("float32")
    x[17] *= 100.0
    path = os.path.join(str(tmp), "outlier.npz")
    np.savez(path, x=x, y=rng.standard_normal((256, 1)).astype("float32"))
    return path


def tiny_first_layer(tmp, fmt):
    # The first layer's outputs are ~1e-7, so the last layer's gradients are tiny while the
    # first layer's are not: per parameter, gradients grow by orders of magnitude towards the input.
    m = keras.Sequential([keras.Input((8,)),
                          layers.Dense(256, activation="relu", name="first", use_bias=False,
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=1e-7, seed=2)),
                          layers.Dense(1, name="last")])
    m.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mse")
    return m


CASES = [
    bad("tiny_first_layer", tiny_first_layer,
        Expect("first", "warning", r"RMS gradient of the first weighted layer 'first' is [\d.e+]+x that of the last, "
                                   r"'last'", {"ratio_first_last": (1e3, 1e12)}),
        formats=("keras", "h5")),
    bad("one_outlier", mlp,
        Expect(None, "warning", r"^1\d% of probe steps had a global gradient norm that jumped over 10x the median of the "
                              r"steps before it \(largest jump [\d.]+x\)",
               {"spike_share": (0.1, 0.2), "synthetic_data": False}),
        data=one_outlier),
]
