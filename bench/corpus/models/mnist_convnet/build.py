"""Simple MNIST convnet (keras-io examples/vision/mnist_convnet.py), a Sequential CNN.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/mnist_convnet.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: the model, `compile(loss="categorical_crossentropy", optimizer="adam",
metrics=["accuracy"])`, pixels scaled to [0, 1] and one-hot labels as the example feeds them.
Changed: `fit(batch_size=128, epochs=15, validation_split=0.1)` -> 8 steps of 32 on 256
synthetic digits (28, 28, 1) in [0, 1] with a visible class signal; saved as `model.keras`
(the example does not save).
"""
import numpy as np
import keras
from keras import layers

num_classes = 10
input_shape = (28, 28, 1)


def make_model():
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def build(out):
    import os

    import lib

    rng = lib.setup()
    x_train, labels = lib.class_images(rng, 256, input_shape, num_classes, 0.0, 1.0)
    y_train = keras.utils.to_categorical(labels, num_classes)
    model = make_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    lib.fit_steps(model, x_train, y_train, steps=8, batch_size=32)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
