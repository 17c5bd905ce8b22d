"""Timeseries anomaly detection using an Autoencoder (keras-io examples/timeseries/timeseries_anomaly_detection.py), a Sequential Conv1D / Conv1DTranspose reconstruction autoencoder trained with x as its own target.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/timeseries/timeseries_anomaly_detection.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author pavithrasv).

Kept as written: TIME_STEPS=288, `create_sequences`, the standardisation with the training
series' mean and std (outside the model), the model (Input((288, 1)) -> Conv1D(32, 7, same,
strides 2, relu) -> Dropout(0.2) -> Conv1D(16, 7, same, strides 2, relu) -> Conv1DTranspose(16,
...) -> Dropout(0.2) -> Conv1DTranspose(32, ...) -> Conv1DTranspose(1, 7, same)),
`compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")`,
`fit(x_train, x_train, batch_size=128, validation_split=0.1,
callbacks=[EarlyStopping(monitor="val_loss", patience=5, mode="min")])`.
Changed:
- the example's module-level code runs inside build(); pandas is not installed here, so the
  CSV's `value` column is a numpy array and `df.mean()`/`df.std()` are numpy's (std with
  ddof=1, as pandas computes it);
- NAB's art_daily_small_noise.csv (a value every 5 minutes for 14 days: a daily cycle between
  ~20 and ~80 with small noise) -> 14 synthetic days of the same shape and scale (4,032 values);
  create_sequences makes its 3,745 windows, of which 256 evenly spaced ones are trained on and
  make data.npz (x = y, (256, 288, 1) float64, as the example fits them);
- epochs 50 -> 4 (2 steps of 128 each after the validation split);
- saved as `model.keras` (the example does not save).
"""
import numpy as np
import keras
from keras import layers

TIME_STEPS = 288


# Generated training sequences for use in the model.
def create_sequences(values, time_steps=TIME_STEPS):
    output = []
    for i in range(len(values) - time_steps + 1):
        output.append(values[i : (i + time_steps)])
    return np.stack(output)


def make_model(x_train):
    model = keras.Sequential(
        [
            layers.Input(shape=(x_train.shape[1], x_train.shape[2])),
            layers.Conv1D(
                filters=32,
                kernel_size=7,
                padding="same",
                strides=2,
                activation="relu",
            ),
            layers.Dropout(rate=0.2),
            layers.Conv1D(
                filters=16,
                kernel_size=7,
                padding="same",
                strides=2,
                activation="relu",
            ),
            layers.Conv1DTranspose(
                filters=16,
                kernel_size=7,
                padding="same",
                strides=2,
                activation="relu",
            ),
            layers.Dropout(rate=0.2),
            layers.Conv1DTranspose(
                filters=32,
                kernel_size=7,
                padding="same",
                strides=2,
                activation="relu",
            ),
            layers.Conv1DTranspose(filters=1, kernel_size=7, padding="same"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    return model


def build(out):
    import os

    import lib

    rng = lib.setup()
    # art_daily_small_noise.csv: one `value` every 5 minutes for 14 days, shape (4032, 1).
    minutes = np.arange(288 * 14) * 5
    hour = (minutes / 60.0) % 24
    day_shape = 1 / (1 + np.exp(-(hour - 9) * 3)) - 1 / (1 + np.exp(-(hour - 17) * 3))  # 9h..17h high
    df_small_noise = (20.0 + 60.0 * day_shape + rng.normal(0, 2.0, size=hour.shape))[:, None]

    # Normalize and save the mean and std we get,
    # for normalizing test data.
    training_mean = df_small_noise.mean(axis=0)
    training_std = df_small_noise.std(axis=0, ddof=1)
    df_training_value = (df_small_noise - training_mean) / training_std
    x_train = create_sequences(df_training_value)
    x_train = x_train[np.linspace(0, len(x_train) - 1, 256).astype(int)]

    model = make_model(x_train)
    history = model.fit(
        x_train,
        x_train,
        epochs=4,  # upstream 50
        batch_size=128,
        validation_split=0.1,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")
        ],
        verbose=0,
    )
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=x_train)
