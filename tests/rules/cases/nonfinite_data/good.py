import os

import keras
import numpy as np
from keras import layers

from helpers import good


def mlp(tmp, fmt):
    m = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu"), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def clean(tmp):
    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp), "data.npz")
    # Large but finite values, and integers: only NaN and Inf count.
    np.savez(path, x=rng.normal(0, 1e30, (40, 6)).astype("float32"), y=rng.integers(0, 3, (40, 1)))
    return path


CASES = [good("clean_data", mlp, data=clean)]
