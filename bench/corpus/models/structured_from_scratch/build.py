"""Structured data classification from scratch (keras-io examples/structured_data/structured_data_classification_from_scratch.py), 13 dict inputs (int64, string, float) with adapted lookup and normalization layers inside the model.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/structured_data/structured_data_classification_from_scratch.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: the 13 `keras.Input`s (shape (1,), int64 for the integer categoricals,
string for `thal`, float32 for the numericals), `encode_numerical_feature` (a
Normalization layer adapted on the training set) and `encode_categorical_feature`
(IntegerLookup/StringLookup with output_mode="binary", adapted on the training set), the
concatenation in the example's order, Dense(32, relu) -> Dropout(0.5) -> Dense(1, sigmoid),
`model.compile("adam", "binary_crossentropy", metrics=["accuracy"])`, and the way the
example feeds the model: a tf.data.Dataset of (dict of per-example scalars, label),
shuffled and batched by 32, so each input receives a batch of shape (32,) (not (32, 1)).
Changed:
- the example reads heart.csv with pandas (not installed here, and no network); the
  synthetic Cleveland data below has the CSV's columns, dtypes (int64 columns, float64
  oldpeak, string thal), units and ranges: age 29..77, sex 0/1, cp 0..4, trestbps 94..200
  mm Hg, chol 126..564 mg/dl, fbs 0/1, restecg 0..2, thalach 71..202 bpm, exang 0/1,
  oldpeak 0..6.2, slope 1..3, ca 0..3, thal "normal"/"fixed"/"reversible" (and the CSV's
  stray "1" and "2"), target 0/1 with about 27% positives that depend on the features.
  `dataframe_to_dataset` therefore builds the same Dataset from a dict of NumPy columns
  instead of a DataFrame (same shuffle, same element structure);
- the example's module-level model code runs inside `make_model(train_ds)`;
- `fit(train_ds, epochs=50, validation_data=val_ds)` -> 8 batches of 32 (no validation);
- the example does not save; saved as `model.keras`;
- data.npz holds the 256 training rows as fit() receives them: `x_<column>` of shape (256,)
  with the CSV dtypes (int64, float64, unicode strings for thal), and `y` (int64 0/1).
"""
import os

# TensorFlow is the only backend that supports string inputs.
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np
import tensorflow as tf
import keras
from keras import layers


def dataframe_to_dataset(dataframe):
    # The example's function, on a dict of NumPy columns instead of a pandas DataFrame.
    dataframe = dict(dataframe)
    labels = dataframe.pop("target")
    ds = tf.data.Dataset.from_tensor_slices((dict(dataframe), labels))
    ds = ds.shuffle(buffer_size=len(labels))
    return ds


def encode_numerical_feature(feature, name, dataset):
    # Create a Normalization layer for our feature
    normalizer = layers.Normalization()

    # Prepare a Dataset that only yields our feature
    feature_ds = dataset.map(lambda x, y: x[name])
    feature_ds = feature_ds.map(lambda x: tf.expand_dims(x, -1))

    # Learn the statistics of the data
    normalizer.adapt(feature_ds)

    # Normalize the input feature
    encoded_feature = normalizer(feature)
    return encoded_feature


def encode_categorical_feature(feature, name, dataset, is_string):
    lookup_class = layers.StringLookup if is_string else layers.IntegerLookup
    # Create a lookup layer which will turn strings into integer indices
    lookup = lookup_class(output_mode="binary")

    # Prepare a Dataset that only yields our feature
    feature_ds = dataset.map(lambda x, y: x[name])
    feature_ds = feature_ds.map(lambda x: tf.expand_dims(x, -1))

    # Learn the set of possible string values and assign them a fixed integer index
    lookup.adapt(feature_ds)

    # Turn the string input into integer indices
    encoded_feature = lookup(feature)
    return encoded_feature


def make_model(train_ds):
    # Categorical features encoded as integers
    sex = keras.Input(shape=(1,), name="sex", dtype="int64")
    cp = keras.Input(shape=(1,), name="cp", dtype="int64")
    fbs = keras.Input(shape=(1,), name="fbs", dtype="int64")
    restecg = keras.Input(shape=(1,), name="restecg", dtype="int64")
    exang = keras.Input(shape=(1,), name="exang", dtype="int64")
    ca = keras.Input(shape=(1,), name="ca", dtype="int64")

    # Categorical feature encoded as string
    thal = keras.Input(shape=(1,), name="thal", dtype="string")

    # Numerical features
    age = keras.Input(shape=(1,), name="age")
    trestbps = keras.Input(shape=(1,), name="trestbps")
    chol = keras.Input(shape=(1,), name="chol")
    thalach = keras.Input(shape=(1,), name="thalach")
    oldpeak = keras.Input(shape=(1,), name="oldpeak")
    slope = keras.Input(shape=(1,), name="slope")

    all_inputs = [
        sex,
        cp,
        fbs,
        restecg,
        exang,
        ca,
        thal,
        age,
        trestbps,
        chol,
        thalach,
        oldpeak,
        slope,
    ]

    # Integer categorical features
    sex_encoded = encode_categorical_feature(sex, "sex", train_ds, False)
    cp_encoded = encode_categorical_feature(cp, "cp", train_ds, False)
    fbs_encoded = encode_categorical_feature(fbs, "fbs", train_ds, False)
    restecg_encoded = encode_categorical_feature(restecg, "restecg", train_ds, False)
    exang_encoded = encode_categorical_feature(exang, "exang", train_ds, False)
    ca_encoded = encode_categorical_feature(ca, "ca", train_ds, False)

    # String categorical features
    thal_encoded = encode_categorical_feature(thal, "thal", train_ds, True)

    # Numerical features
    age_encoded = encode_numerical_feature(age, "age", train_ds)
    trestbps_encoded = encode_numerical_feature(trestbps, "trestbps", train_ds)
    chol_encoded = encode_numerical_feature(chol, "chol", train_ds)
    thalach_encoded = encode_numerical_feature(thalach, "thalach", train_ds)
    oldpeak_encoded = encode_numerical_feature(oldpeak, "oldpeak", train_ds)
    slope_encoded = encode_numerical_feature(slope, "slope", train_ds)

    all_features = layers.concatenate(
        [
            sex_encoded,
            cp_encoded,
            fbs_encoded,
            restecg_encoded,
            exang_encoded,
            slope_encoded,
            ca_encoded,
            thal_encoded,
            age_encoded,
            trestbps_encoded,
            chol_encoded,
            thalach_encoded,
            oldpeak_encoded,
        ]
    )
    x = layers.Dense(32, activation="relu")(all_features)
    x = layers.Dropout(0.5)(x)
    output = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(all_inputs, output)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


def heart_csv(rng, n):
    """Synthetic rows with heart.csv's columns, dtypes, units and ranges (Cleveland Clinic data)."""
    age = np.clip(np.round(rng.normal(54.4, 9.0, n)), 29, 77).astype("int64")
    sex = (rng.uniform(size=n) < 0.68).astype("int64")
    cp = rng.choice([0, 1, 2, 3, 4], size=n, p=[0.01, 0.08, 0.16, 0.28, 0.47]).astype("int64")
    trestbps = np.clip(np.round(rng.normal(131.7, 17.6, n)), 94, 200).astype("int64")
    chol = np.clip(np.round(rng.normal(246.5, 51.8, n)), 126, 564).astype("int64")
    fbs = (rng.uniform(size=n) < 0.15).astype("int64")
    restecg = rng.choice([0, 1, 2], size=n, p=[0.50, 0.01, 0.49]).astype("int64")
    thalach = np.clip(np.round(rng.normal(149.6, 22.9, n) - 0.3 * (age - 54)), 71, 202).astype("int64")
    exang = (rng.uniform(size=n) < 0.33).astype("int64")
    oldpeak = np.clip(np.round(rng.exponential(1.05, n), 1), 0.0, 6.2).astype("float64")
    slope = rng.choice([1, 2, 3], size=n, p=[0.47, 0.46, 0.07]).astype("int64")
    ca = rng.choice([0, 1, 2, 3], size=n, p=[0.59, 0.21, 0.13, 0.07]).astype("int64")
    thal = rng.choice(["normal", "fixed", "reversible", "1", "2"], size=n, p=[0.55, 0.06, 0.37, 0.01, 0.01])
    score = (0.05 * (age - 54) + 0.8 * sex + 0.6 * (cp == 4) + 0.9 * exang + 0.7 * oldpeak
             + 0.8 * ca + 1.2 * (thal == "reversible") - 0.03 * (thalach - 150) - 2.6)
    target = (rng.uniform(size=n) < 1 / (1 + np.exp(-score))).astype("int64")
    return {"age": age, "sex": sex, "cp": cp, "trestbps": trestbps, "chol": chol, "fbs": fbs,
            "restecg": restecg, "thalach": thalach, "exang": exang, "oldpeak": oldpeak,
            "slope": slope, "ca": ca, "thal": thal.astype(str), "target": target}


def build(out):
    import lib

    rng = lib.setup()
    dataframe = heart_csv(rng, 256)
    train_ds = dataframe_to_dataset(dataframe)
    train_ds = train_ds.batch(32)
    model = make_model(train_ds)
    model.fit(train_ds, epochs=1, verbose=0)
    model.save(os.path.join(out, "model.keras"))
    features = {k: v for k, v in dataframe.items() if k != "target"}
    lib.save_data(out, y=dataframe["target"], **{"x_" + k: v for k, v in features.items()})
