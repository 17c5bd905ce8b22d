import os

import keras
import numpy as np
from keras import layers

from helpers import good


def mlp(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
    return m


def lstm(tmp, fmt):
    m = keras.Sequential([keras.Input((12, 4)), layers.LSTM(16), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0), loss="mse")
    return m


def ordinary_data(tmp):
    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp), "ordinary.npz")
    np.savez(path, x=rng.standard_normal((256, 8)).astype("float32"),
             y=rng.standard_normal((256, 1)).astype("float32"))
    return path


def deep_he(tmp, fmt):
    """bad.amplifying_init with He's scale: ten ReLU layers whose first-step gradients stay below their weights."""
    m = keras.Sequential([keras.Input((32,))]
                         + [layers.Dense(64, activation="relu", kernel_initializer="he_normal") for _ in range(10)]
                         + [layers.Dense(10, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return m


def tiny_head(tmp, fmt):
    """A last layer drawn tiny on purpose (DDPG's actor, +-0.003) is judged against a scaled kernel's norm."""
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu"),
                          layers.Dense(1, kernel_initializer=keras.initializers.RandomUniform(-0.003, 0.003))])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return m


CASES = [
    good("deep_he", deep_he),
    good("tiny_head", tiny_head),
    good("mlp_ordinary_data", mlp, data=ordinary_data),
    good("mlp_synthetic", mlp, formats=("keras", "h5")),
    good("clipped_lstm", lstm),
]
