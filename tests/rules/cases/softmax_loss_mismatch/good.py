import keras
from keras import layers

from helpers import good


def _mlp(head, loss):
    inp = keras.Input((8,))
    x = layers.Dense(16, activation="relu")(inp)
    for layer in head:
        x = layer(x)
    m = keras.Model(inp, x)
    m.compile(optimizer="adam", loss=loss)
    return m


CASES = [
    good("softmax_sparse_cce", lambda t, f: _mlp([layers.Dense(5, activation="softmax")],
                                                 "sparse_categorical_crossentropy"), formats=("keras", "h5")),
    good("logits_from_logits", lambda t, f: _mlp(
        [layers.Dense(5)], keras.losses.SparseCategoricalCrossentropy(from_logits=True))),
    good("sigmoid_binary", lambda t, f: _mlp([layers.Dense(1, activation="sigmoid")], "binary_crossentropy")),
    good("multilabel_sigmoid_binary", lambda t, f: _mlp([layers.Dense(6, activation="sigmoid")],
                                                         keras.losses.BinaryCrossentropy())),
    good("softmax_layer_then_reshape", lambda t, f: _mlp(
        [layers.Dense(4), layers.Softmax(), layers.Reshape((2, 2))], "categorical_crossentropy")),
    good("linear_regression", lambda t, f: _mlp([layers.Dense(1)], "mse")),
]
