import keras
from keras import layers

from helpers import good


def he_relu_mlp(tmp, fmt):
    m = keras.Sequential([keras.Input((16,))]
                         + [layers.Dense(32, activation="relu", kernel_initializer="he_normal") for _ in range(4)]
                         + [layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return m


CASES = [good("he_relu_mlp", he_relu_mlp, formats=("keras", "h5"))]
