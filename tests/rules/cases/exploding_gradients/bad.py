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


CASES = [
    bad("one_outlier", mlp,
        Expect(None, "warning", r"^1\d% of probe steps had a global gradient norm over 10x the median",
               {"spike_share": (0.1, 0.2), "synthetic_data": False}),
        data=one_outlier),
]
