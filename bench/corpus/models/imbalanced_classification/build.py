"""Imbalanced classification: credit card fraud detection (keras-io examples/structured_data/imbalanced_classification.py), a Sequential MLP trained at Adam(1e-2) with class_weight on 0.17% positives.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/structured_data/imbalanced_classification.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: the 80/20 split, class weights 1/count per class, standardisation with the
training mean and std outside the model, the Sequential model (Dense 256 relu x3, two
Dropout(0.3), Dense(1, sigmoid)), `compile(optimizer=keras.optimizers.Adam(1e-2),
loss="binary_crossentropy", metrics=[FN, FP, TN, TP, Precision, Recall])`, targets uint8 of
shape (N, 1), `fit(batch_size=2048, class_weight=..., validation_data=...)` with the
example's ModelCheckpoint callback ("fraud_model_at_epoch_{epoch}.keras"), which is how the
example saves.
Changed:
- creditcard.csv (Kaggle, not on disk) -> 20,480 synthetic transactions with its 30 columns:
  Time 0..172,792 s, V1..V28 heavy-tailed PCA-like components (std falling from ~1.96 to
  ~0.33), Amount 0..25,691 (median ~22), 0.17% frauds whose V-components (V14, V12, V10, V17,
  V4, V11, ...) are shifted as in the real data;
- epochs 30 -> 1 epoch of the 16,384 training rows = 8 steps of 2048; the checkpoint of that
  epoch, `fraud_model_at_epoch_1.keras`, is the saved model;
- data.npz: 256 standardised training rows as fit() receives them (float32 (256, 30)) with
  targets uint8 (256, 1); to keep a few frauds in so small a sample it holds the first 4
  training frauds and the first 252 legitimate rows (1.6% positives instead of 0.17%).
"""
import numpy as np

import keras


def make_model(input_shape):
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    return model


def creditcard_rows(rng, n, fraud_share=0.00173):
    """Synthetic rows shaped like creditcard.csv: Time, V1..V28, Amount; and the Class column."""
    targets = (rng.uniform(size=n) < fraud_share).astype("uint8")
    time = np.sort(rng.uniform(0, 172792, n))
    stds = np.linspace(1.96, 0.33, 28)
    v = rng.standard_t(4, size=(n, 28)) * stds / np.sqrt(2.0)
    shift = np.zeros(28)
    for k, s in {14: -6.9, 12: -6.3, 10: -5.7, 17: -6.7, 4: 4.5, 11: 3.8, 3: -7.0, 16: -4.1, 7: -5.6,
                 2: 3.6, 9: -2.6, 1: -4.8, 18: -2.2, 5: -3.2, 6: -1.4}.items():
        shift[k - 1] = s
    v += targets[:, None] * shift * rng.uniform(0.3, 1.2, size=(n, 1))
    amount = np.clip(np.round(rng.lognormal(3.1, 1.6, n), 2), 0, 25691.16)
    features = np.concatenate([time[:, None], v, amount[:, None]], axis=1).astype("float32")
    return features, targets[:, None]


def build(out):
    import os

    import lib

    rng = lib.setup()
    features, targets = creditcard_rows(rng, 20480)

    num_val_samples = int(len(features) * 0.2)
    train_features = features[:-num_val_samples]
    train_targets = targets[:-num_val_samples]
    val_features = features[-num_val_samples:]
    val_targets = targets[-num_val_samples:]

    counts = np.bincount(train_targets[:, 0])
    weight_for_0 = 1.0 / counts[0]
    weight_for_1 = 1.0 / counts[1]

    mean = np.mean(train_features, axis=0)
    train_features -= mean
    val_features -= mean
    std = np.std(train_features, axis=0)
    train_features /= std
    val_features /= std

    model = make_model(train_features.shape[1:])
    metrics = [
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.FalsePositives(name="fp"),
        keras.metrics.TrueNegatives(name="tn"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics
    )
    callbacks = [keras.callbacks.ModelCheckpoint(os.path.join(out, "fraud_model_at_epoch_{epoch}.keras"))]
    class_weight = {0: weight_for_0, 1: weight_for_1}
    model.fit(
        train_features,
        train_targets,
        batch_size=2048,
        epochs=1,
        verbose=0,
        callbacks=callbacks,
        validation_data=(val_features, val_targets),
        class_weight=class_weight,
    )
    frauds = np.flatnonzero(train_targets[:, 0] == 1)[:4]
    legit = np.flatnonzero(train_targets[:, 0] == 0)[:252]
    keep = np.sort(np.concatenate([frauds, legit]))
    lib.save_data(out, x=train_features[keep], y=train_targets[keep])
