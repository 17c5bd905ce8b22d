"""Timeseries forecasting for weather prediction (keras-io examples/timeseries/timeseries_weather_forecasting.py), an LSTM(32) regressor on standardised weather features, checkpointed as weights only.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/timeseries/timeseries_weather_forecasting.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Prabhanshu Attri).

Kept as written: feature_keys and the 7 selected features (p, T, VPmax, VPdef, sh, rho, wv),
split_fraction=0.715, step=6, past=720, future=72, learning_rate=0.001, batch_size=256,
`normalize` (standardised with the training part's mean and std, outside the model), the
training windows and labels (`timeseries_dataset_from_array(x_train, y_train,
sequence_length=120, sampling_rate=6, batch_size=256)`, the label the standardised temperature
72 rows after each 720-row window), the model (Input((120, 7)) -> LSTM(32) -> Dense(1)),
`compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")`, and the callbacks
EarlyStopping(monitor="val_loss", patience=5) and ModelCheckpoint(monitor="val_loss",
filepath="model_checkpoint.weights.h5", save_weights_only=True, save_best_only=True), which save
the example's only file, `model_checkpoint.weights.h5` (weights, no architecture).
Changed:
- the example's module-level code runs inside build(); pandas is not installed here, so the
  DataFrame column selection and .loc/.iloc slicing are written with numpy on the same rows and
  columns (`normalize` gets the same array as `features.values`);
- the Jena climate CSV (420,551 rows every 10 minutes, 2009-2016) -> 60 synthetic days every 10
  minutes (8,640 rows, no Date Time column) with the 14 columns in their real units and ranges (pressure ~989 mbar
  with weather systems, temperature with daily and seasonal cycles, saturation vapour pressure,
  deficit, specific humidity and air density derived from them as physics relates them, wind
  speed ~2 m/s; the real file's -9999 wind-speed glitches are left out); normalised and windowed
  by the example's code;
- of the example's training windows (stride 1, 10 minutes apart), every 24th (4 hours apart;
  228 windows) makes data.npz, x (228, 120, 7) and y (228, 1) float64 as the dataset yields them;
- `fit(dataset_train, epochs=10, validation_data=dataset_val, callbacks=...)` -> 2 epochs of
  4 batches of 64 of those windows, validation on the example's validation windows;
- also saved as `model.keras` (the example saves only the weights file).
"""
import numpy as np
import keras

titles = [
    "Pressure",
    "Temperature",
    "Temperature in Kelvin",
    "Temperature (dew point)",
    "Relative Humidity",
    "Saturation vapor pressure",
    "Vapor pressure",
    "Vapor pressure deficit",
    "Specific humidity",
    "Water vapor concentration",
    "Airtight",
    "Wind speed",
    "Maximum wind speed",
    "Wind direction in degrees",
]

feature_keys = [
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
]

date_time_key = "Date Time"

split_fraction = 0.715
step = 6

past = 720
future = 72
learning_rate = 0.001
batch_size = 256
epochs = 10


def normalize(data, train_split):
    data_mean = data[:train_split].mean(axis=0)
    data_std = data[:train_split].std(axis=0)
    return (data - data_mean) / data_std


def make_model(inputs):
    inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
    lstm_out = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)

    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def build(out):
    import os

    import lib

    rng = lib.setup()

    def jena_like(rows):
        """The Jena climate CSV's 14 columns in their units, every 10 minutes from 2009-01-01."""
        t = np.arange(rows) / 144.0  # days
        smooth = lambda scale, days: np.convolve(rng.standard_normal(rows + 2000), np.ones(int(days * 144)) / np.sqrt(days * 144), "same")[1000:1000 + rows] * scale
        p = 989.0 + smooth(2.0, 1.5) + 0.3 * rng.standard_normal(rows)  # mbar
        T = 2.0 + 6.0 * np.sin(2 * np.pi * (t - 100) / 365) + 4.0 * np.sin(2 * np.pi * (t - 0.375)) + smooth(1.5, 1.0)  # degC
        vpmax = 6.1078 * np.exp(17.27 * T / (T + 237.3))  # mbar, Tetens
        rh = np.clip(80 - 15 * np.sin(2 * np.pi * (t - 0.375)) + smooth(4.0, 1.0), 20, 100)  # %
        vpact = vpmax * rh / 100
        vpdef = vpmax - vpact
        sh = 622 * vpact / (p - 0.378 * vpact)  # g/kg
        h2oc = 1000 * vpact / p  # mmol/mol
        Tk = T + 273.15
        rho = 100 * p / (287.05 * Tk) * 1000  # g/m**3
        wv = np.abs(2.0 + smooth(0.6, 0.5) + 0.5 * rng.standard_normal(rows))  # m/s
        wd = (180 + np.cumsum(rng.standard_normal(rows)) * 3) % 360
        tdew = 237.3 * np.log(vpact / 6.1078) / (17.27 - np.log(vpact / 6.1078))
        columns = [p, T, Tk * (1000 / p) ** 0.286, tdew, rh, vpmax, vpact, vpdef, sh, h2oc, rho, wv,
                   wv * rng.uniform(1.2, 2.0, rows), wd]
        return {k: np.round(c, 2) for k, c in zip(feature_keys, columns)}

    df = jena_like(60 * 144)
    train_split = int(split_fraction * len(df["p (mbar)"]))

    # The example's preprocessing, its pandas indexing written with numpy (same rows and columns).
    selected_features = [feature_keys[i] for i in [0, 1, 5, 7, 8, 10, 11]]
    features = np.stack([df[k] for k in selected_features], axis=1)  # df[selected_features].values
    features = normalize(features, train_split)
    train_data = features[0:train_split]  # features.loc[0 : train_split - 1]
    val_data = features[train_split:]  # features.loc[train_split:]
    start = past + future
    end = start + train_split
    x_train = train_data[:, [i for i in range(7)]]
    y_train = features[start:end][:, [1]]  # features.iloc[start:end][[1]]
    sequence_length = int(past / step)
    dataset_train = keras.preprocessing.timeseries_dataset_from_array(
        x_train,
        y_train,
        sequence_length=sequence_length,
        sampling_rate=step,
        batch_size=batch_size,
    )
    x_end = len(val_data) - past - future
    label_start = train_split + past + future
    x_val = val_data[:x_end][:, [i for i in range(7)]]
    y_val = features[label_start:][:, [1]]
    dataset_val = keras.preprocessing.timeseries_dataset_from_array(
        x_val,
        y_val,
        sequence_length=sequence_length,
        sampling_rate=step,
        batch_size=batch_size,
    )

    # The training windows 4 hours apart (228 of them).
    windows = [(x.numpy(), y.numpy()) for x, y in dataset_train]
    xs = np.concatenate([w[0] for w in windows])[::24][:256]
    ys = np.concatenate([w[1] for w in windows])[::24][:256]

    model = make_model(xs)
    path_checkpoint = os.path.join(out, "model_checkpoint.weights.h5")
    es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
    modelckpt_callback = keras.callbacks.ModelCheckpoint(
        monitor="val_loss",
        filepath=path_checkpoint,
        verbose=0,
        save_weights_only=True,
        save_best_only=True,
    )
    model.fit(
        xs,
        ys,
        batch_size=64,
        epochs=2,
        validation_data=dataset_val.take(2),
        callbacks=[es_callback, modelckpt_callback],
        verbose=0,
    )
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=xs, y=ys)
