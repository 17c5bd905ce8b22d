"""Structured data classification with FeatureSpace (keras-io examples/structured_data/structured_data_classification_with_feature_space.py), preprocessing outside the trained model, a training model whose input is a mid-graph tensor.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/structured_data/structured_data_classification_with_feature_space.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: the second (customised) `FeatureSpace` (integer_categorical and
string_categorical with num_oov_indices=0, age float_discretized into 30 bins, five
float_normalized features, crosses (sex, age) into 64 and (thal, ca) into 16,
output_mode="concat"), adapted on the label-free training Dataset; preprocessing in the
tf.data pipeline (`train_ds.map(lambda x, y: (feature_space(x), y))`); the two models built
as the example builds them: `training_model = keras.Model(inputs=encoded_features,
outputs=predictions)` (its input is FeatureSpace's concatenated encoding, a tensor in the
middle of the preprocessing graph, not a keras.Input) and `inference_model =
keras.Model(inputs=dict_inputs, outputs=predictions)`, sharing Dense(32, relu) ->
Dropout(0.5) -> Dense(1, sigmoid); `training_model.compile(optimizer="adam",
loss="binary_crossentropy", metrics=["accuracy"])`.
Changed:
- the example reads heart.csv with pandas (not installed here, and no network); the
  synthetic Cleveland data has the CSV's columns, dtypes (int64, float64 oldpeak, string
  thal), units and ranges (age 29..77, trestbps 94..200 mm Hg, chol 126..564 mg/dl, thalach
  71..202 bpm, oldpeak 0..6.2, ...) and about 27% positive targets that depend on the
  features; `dataframe_to_dataset` builds the same Dataset from a dict of NumPy columns;
- the first, uncustomised FeatureSpace (which the example overwrites) is not built;
- the example's module-level code runs inside build();
- `training_model.fit(preprocessed_train_ds, epochs=20, validation_data=...)` -> 8 batches
  of 32 (no validation);
- the example does not save; `training_model` (the compiled, trained one) is saved as
  `model.keras` and `inference_model` (never compiled, as in the example) as
  `inference.keras`;
- data.npz: `x` (256, 138) float32 is what training_model.fit receives (the FeatureSpace
  output), `y` the 0/1 labels; `x_<column>` (shape (256,), the CSV dtypes, unicode strings
  for thal) are the raw dicts the inference model takes, one scalar per example as the
  example's Dataset yields them.
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np
import tensorflow as tf
import keras
from keras.utils import FeatureSpace


def dataframe_to_dataset(dataframe):
    # The example's function, on a dict of NumPy columns instead of a pandas DataFrame.
    dataframe = dict(dataframe)
    labels = dataframe.pop("target")
    ds = tf.data.Dataset.from_tensor_slices((dict(dataframe), labels))
    ds = ds.shuffle(buffer_size=len(labels))
    return ds


def make_feature_space():
    return FeatureSpace(
        features={
            # Categorical features encoded as integers
            "sex": FeatureSpace.integer_categorical(num_oov_indices=0),
            "cp": FeatureSpace.integer_categorical(num_oov_indices=0),
            "fbs": FeatureSpace.integer_categorical(num_oov_indices=0),
            "restecg": FeatureSpace.integer_categorical(num_oov_indices=0),
            "exang": FeatureSpace.integer_categorical(num_oov_indices=0),
            "ca": FeatureSpace.integer_categorical(num_oov_indices=0),
            # Categorical feature encoded as string
            "thal": FeatureSpace.string_categorical(num_oov_indices=0),
            # Numerical features to discretize
            "age": FeatureSpace.float_discretized(num_bins=30),
            # Numerical features to normalize
            "trestbps": FeatureSpace.float_normalized(),
            "chol": FeatureSpace.float_normalized(),
            "thalach": FeatureSpace.float_normalized(),
            "oldpeak": FeatureSpace.float_normalized(),
            "slope": FeatureSpace.float_normalized(),
        },
        # Specify feature cross with a custom crossing dim.
        crosses=[
            FeatureSpace.cross(feature_names=("sex", "age"), crossing_dim=64),
            FeatureSpace.cross(
                feature_names=("thal", "ca"),
                crossing_dim=16,
            ),
        ],
        output_mode="concat",
    )


def make_models(feature_space):
    dict_inputs = feature_space.get_inputs()
    encoded_features = feature_space.get_encoded_features()

    x = keras.layers.Dense(32, activation="relu")(encoded_features)
    x = keras.layers.Dropout(0.5)(x)
    predictions = keras.layers.Dense(1, activation="sigmoid")(x)

    training_model = keras.Model(inputs=encoded_features, outputs=predictions)
    training_model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"]
    )

    inference_model = keras.Model(inputs=dict_inputs, outputs=predictions)
    return training_model, inference_model


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

    feature_space = make_feature_space()
    train_ds_with_no_labels = train_ds.map(lambda x, _: x)
    feature_space.adapt(train_ds_with_no_labels)

    preprocessed_train_ds = train_ds.map(
        lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    preprocessed_train_ds = preprocessed_train_ds.prefetch(tf.data.AUTOTUNE)

    training_model, inference_model = make_models(feature_space)
    training_model.fit(preprocessed_train_ds, epochs=1, verbose=0)
    training_model.save(os.path.join(out, "model.keras"))
    inference_model.save(os.path.join(out, "inference.keras"))

    features = {k: v for k, v in dataframe.items() if k != "target"}
    x = np.asarray(feature_space({k: tf.constant(v) for k, v in features.items()}), dtype="float32")
    lib.save_data(out, x=x, y=dataframe["target"], **{"x_" + k: v for k, v in features.items()})
