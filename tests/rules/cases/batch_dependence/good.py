import keras
from keras import layers

from helpers import good


def batchnorm_training_true(tmp, fmt):
    # BatchNormalization called with training=True inside a Functional model: Keras's
    # inference overrides it, so outputs do not depend on the batch.
    inp = keras.Input((8,))
    x = layers.Dense(16)(inp)
    x = layers.BatchNormalization()(x, training=True)
    m = keras.Model(inp, layers.Dense(1)(layers.ReLU()(x)))
    m.compile(optimizer="adam", loss="mse")
    return m


def layernorm_dropout(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(16), layers.LayerNormalization(), layers.Dropout(0.5),
                          layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    good("batchnorm_training_true", batchnorm_training_true),
    good("layernorm_dropout", layernorm_dropout, formats=("keras", "h5")),
]
