"""Timeseries classification with a Transformer model (keras-io examples/timeseries/timeseries_classification_transformer.py), functional encoder blocks with Conv1D projections and channels-first pooling, Adam at 1e-4.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/timeseries/timeseries_classification_transformer.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Theodoros Ntakouris).

Kept as written: `readucr`, the data preparation (series reshaped to (n, steps, 1), shuffled,
labels -1/1 -> 0/1), `transformer_encoder` (MultiHeadAttention, Dropout, LayerNormalization,
residual, Conv1D(ff_dim, 1, relu) and Conv1D(features, 1) feed-forward) and `build_model`
(stacked encoders, GlobalAveragePooling1D(data_format="channels_first"), Dense(128, relu) +
Dropout, Dense(2, softmax)) with num_heads=4, ff_dim=4, num_transformer_blocks=4,
mlp_units=[128], mlp_dropout=0.4, dropout=0.25; `compile(loss="sparse_categorical_crossentropy",
optimizer=keras.optimizers.Adam(learning_rate=1e-4), metrics=["sparse_categorical_accuracy"])`;
`fit(..., validation_split=0.2, batch_size=64, callbacks=[EarlyStopping(patience=10,
restore_best_weights=True)])`.
Changed (shrunk for CPU: attention over 500 steps with 256-wide heads costs ~4 s per step on
two cores):
- series length 500 -> 128 steps and head_size 256 -> 64;
- the example's module-level code runs inside build();
- FordA -> 256 synthetic z-normalised engine-noise series (a few harmonics plus noise, the class
  changing the harmonics' mix; float64, labels -1/1 -> 0/1 int64 of shape (n,), as the example
  prepares them);
- epochs 150 -> 2 (4 steps of 64 each after the validation split);
- saved as `model.keras` (the example does not save).
"""
import numpy as np
import keras
from keras import layers


def readucr(filename):
    data = np.loadtxt(filename, delimiter="\t")
    y = data[:, 0]
    x = data[:, 1:]
    return x, y.astype(int)


def transformer_encoder(inputs, head_size, num_heads, ff_dim, dropout=0):
    # Attention and Normalization
    x = layers.MultiHeadAttention(
        key_dim=head_size, num_heads=num_heads, dropout=dropout
    )(inputs, inputs)
    x = layers.Dropout(dropout)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    res = x + inputs

    # Feed Forward Part
    x = layers.Conv1D(filters=ff_dim, kernel_size=1, activation="relu")(res)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    return x + res


n_classes = 2  # len(np.unique(y_train)) for FordA


def build_model(
    input_shape,
    head_size,
    num_heads,
    ff_dim,
    num_transformer_blocks,
    mlp_units,
    dropout=0,
    mlp_dropout=0,
):
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(num_transformer_blocks):
        x = transformer_encoder(x, head_size, num_heads, ff_dim, dropout)

    x = layers.GlobalAveragePooling1D(data_format="channels_first")(x)
    for dim in mlp_units:
        x = layers.Dense(dim, activation="relu")(x)
        x = layers.Dropout(mlp_dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def build(out):
    import os

    import lib

    rng = lib.setup()
    n, steps = 256, 128  # upstream 500 steps

    # FordA_TRAIN.tsv as readucr returns it: labels -1/1, z-normalised engine-noise series.
    y_train = rng.choice([-1, 1], size=n)
    t = np.arange(steps)
    x_train = np.zeros((n, steps))
    for i in range(n):
        base = rng.uniform(0.05, 0.1)
        weights = rng.uniform(0.5, 1.0, size=3) * (np.array([1.0, 0.6, 0.9]) if y_train[i] > 0 else
                                                    np.array([1.0, 0.9, 0.3]))
        phases = rng.uniform(0, 2 * np.pi, size=3)
        series = sum(w * np.sin(2 * np.pi * base * h * t + p) for h, w, p in zip((1, 2, 3), weights, phases))
        series = series + 0.5 * rng.standard_normal(steps)
        x_train[i] = (series - series.mean()) / series.std()

    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    idx = np.random.permutation(len(x_train))
    x_train = x_train[idx]
    y_train = y_train[idx]
    y_train[y_train == -1] = 0

    input_shape = x_train.shape[1:]

    model = build_model(
        input_shape,
        head_size=64,  # upstream 256
        num_heads=4,
        ff_dim=4,
        num_transformer_blocks=4,
        mlp_units=[128],
        mlp_dropout=0.4,
        dropout=0.25,
    )

    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=1e-4),
        metrics=["sparse_categorical_accuracy"],
    )
    callbacks = [keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)]

    model.fit(
        x_train,
        y_train,
        validation_split=0.2,
        epochs=2,  # upstream 150
        batch_size=64,
        callbacks=callbacks,
        verbose=0,
    )
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
