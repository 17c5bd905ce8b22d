"""Timeseries classification from scratch (keras-io examples/timeseries/timeseries_classification_from_scratch.py), a fully convolutional net with BatchNorm on z-normalised series, saved by ModelCheckpoint.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/timeseries/timeseries_classification_from_scratch.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author hfawaz).

Kept as written: `readucr`, the data preparation (series reshaped to (n, 500, 1), shuffled,
labels -1/1 -> 0/1), make_model (3x Conv1D(64, 3, same) + BatchNormalization + ReLU,
GlobalAveragePooling1D, Dense(num_classes=2, softmax)), the callbacks (ModelCheckpoint(
"best_model.keras", save_best_only=True, monitor="val_loss"), ReduceLROnPlateau(factor=0.5,
patience=20, min_lr=0.0001), EarlyStopping(patience=50)), `compile(optimizer="adam",
loss="sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])`, and
`fit(..., batch_size=32, callbacks=callbacks, validation_split=0.2)`: the saved model is the
file ModelCheckpoint writes, `best_model.keras`, as in the example.
Changed:
- the example's module-level code runs inside build();
- FordA (3601 engine-noise series of 500 steps, z-normalised per series, labels -1/1) -> 256
  synthetic series of 500 steps in the same form: a few engine harmonics plus noise, the
  class changing the harmonics' mix, each series z-normalised (mean 0, std 1), labels -1/1
  mapped to 0/1 by the example's code (int64, shape (n,));
- epochs 500 -> 2 (7 steps of 32 each, after the 20% validation split);
- data.npz holds the 256 series (float64, as np.loadtxt gives them) and labels as fit()
  receives them.
"""
import keras
import numpy as np


def readucr(filename):
    data = np.loadtxt(filename, delimiter="\t")
    y = data[:, 0]
    x = data[:, 1:]
    return x, y.astype(int)


def make_model(input_shape, num_classes):
    input_layer = keras.layers.Input(input_shape)

    conv1 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(input_layer)
    conv1 = keras.layers.BatchNormalization()(conv1)
    conv1 = keras.layers.ReLU()(conv1)

    conv2 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv1)
    conv2 = keras.layers.BatchNormalization()(conv2)
    conv2 = keras.layers.ReLU()(conv2)

    conv3 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv2)
    conv3 = keras.layers.BatchNormalization()(conv3)
    conv3 = keras.layers.ReLU()(conv3)

    gap = keras.layers.GlobalAveragePooling1D()(conv3)

    output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)

    return keras.models.Model(inputs=input_layer, outputs=output_layer)


def build(out):
    import os

    import lib

    rng = lib.setup()
    n, steps = 256, 500

    # FordA_TRAIN.tsv as readucr returns it: labels -1/1, z-normalised engine-noise series.
    y_train = rng.choice([-1, 1], size=n)
    t = np.arange(steps)
    x_train = np.zeros((n, steps))
    for i in range(n):
        base = rng.uniform(0.02, 0.05)
        weights = rng.uniform(0.5, 1.0, size=3) * (np.array([1.0, 0.6, 0.9]) if y_train[i] > 0 else
                                                    np.array([1.0, 0.9, 0.3]))
        phases = rng.uniform(0, 2 * np.pi, size=3)
        series = sum(w * np.sin(2 * np.pi * base * h * t + p) for h, w, p in zip((1, 2, 3), weights, phases))
        series = series + 0.5 * rng.standard_normal(steps)
        x_train[i] = (series - series.mean()) / series.std()

    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    num_classes = len(np.unique(y_train))
    idx = np.random.permutation(len(x_train))
    x_train = x_train[idx]
    y_train = y_train[idx]
    y_train[y_train == -1] = 0

    model = make_model(input_shape=x_train.shape[1:], num_classes=num_classes)

    epochs = 2  # upstream 500
    batch_size = 32

    callbacks = [
        keras.callbacks.ModelCheckpoint(
            os.path.join(out, "best_model.keras"), save_best_only=True, monitor="val_loss"
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=20, min_lr=0.0001
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, verbose=1),
    ]
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        callbacks=callbacks,
        validation_split=0.2,
        verbose=0,
    )
    lib.save_data(out, x=x_train, y=y_train)  # float64, as np.loadtxt gives it
