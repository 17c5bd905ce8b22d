import keras
from keras import layers

from helpers import good


def he_relu(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
                          layers.ReLU(), layers.Dense(16, activation="tanh"), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [good("he_relu", he_relu, formats=("keras", "h5"))]
