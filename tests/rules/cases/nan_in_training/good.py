import keras
from keras import layers

from helpers import good


def mlp_sane_rate(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    return m


def classifier_adam(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"),
                          layers.Dense(4, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return m


CASES = [
    good("mlp_sane_rate", mlp_sane_rate, formats=("keras", "h5")),
    good("classifier_adam", classifier_adam),
]
