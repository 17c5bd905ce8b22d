"""Wide, Deep and Cross networks (keras-io examples/structured_data/wide_deep_cross_networks.py), 12 scalar dict inputs (10 raw numbers, 2 strings looked up inside the model), three architectures.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/structured_data/wide_deep_cross_networks.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Khalid Salama).

Kept as written: the metadata (CSV_HEADER, NUMERIC_FEATURE_NAMES, COLUMN_DEFAULTS with int
0 for the numbers, so make_csv_dataset yields int32 numbers), the hyperparameters
(learning_rate 0.001, dropout_rate 0.1, batch_size 265, hidden_units [32, 32]),
get_dataset_from_csv, run_experiment (Adam, SparseCategoricalCrossentropy,
SparseCategoricalAccuracy, fit then evaluate), create_model_inputs (float32 numbers,
string categoricals, shape ()), encode_inputs (StringLookup binary/int + Embedding of
sqrt(vocab) dims inside the model, numbers as-is), create_baseline_model,
create_wide_and_deep_model, create_deep_and_cross_model.
Changed:
- covtype.data.gz (downloaded, read with pandas) -> 2,120 synthetic training rows and 265
  test rows in the example's CSV layout (header, 12 features, Cover_Type 0..6): Elevation
  1859..3858 m, Aspect 0..360, Slope 0..66, Horizontal_Distance_To_Hydrology 0..1397,
  Vertical_Distance_To_Hydrology -173..601, Horizontal_Distance_To_Roadways 0..7117,
  Hillshade_9am/Noon/3pm 0..254, Horizontal_Distance_To_Fire_Points 0..7173 (integers),
  Wilderness_Area "area_type_1..4", Soil_Type "soil_type_1..40", Cover_Type with the
  dataset's class shares (36%, 49%, 6%, 0.5%, 1.6%, 3%, 3.5%) depending on elevation and
  area. CATEGORICAL_FEATURES_WITH_VOCABULARY lists the vocabularies in index order (the
  example takes them off the DataFrame in order of appearance);
- one line added to get_dataset_from_csv: `.map(lambda x, y: (dict(x), y))`. As written the
  example cannot train on Keras 3.15 / TF 2.21: make_csv_dataset yields OrderedDicts in CSV
  column order, and Keras 3.15 binds an OrderedDict to the model's dict of inputs by
  position (optree flattens an OrderedDict in insertion order, a dict in sorted key
  order), so fit() gets columns in the wrong inputs and fails with "UnimplementedError: Cast
  int32 to string is not supported [[{{node functional_1/Cast_9}}]]" (a number column
  bound to a string input).
  The plain dict is bound by name, as the example intends;
- the example's module-level code runs inside build();
- num_epochs 50 -> 1 epoch of the 2,120 rows = 8 steps of 265 (run_experiment is called as
  written with the small CSVs);
- the example does not save; deep_and_cross_model is saved as `model.keras`,
  wide_and_deep_model as `wide_deep.keras`, baseline_model as `baseline.keras`;
- data.npz holds the first 256 training rows as fit() receives them: `x_<feature>` of
  shape (256,) (int32 numbers, unicode strings for the two categoricals), `y` int32 0..6.
"""
import os

# Only the TensorFlow backend supports string inputs.
os.environ["KERAS_BACKEND"] = "tensorflow"

import math
import numpy as np
from tensorflow import data as tf_data
import keras
from keras import layers

CSV_HEADER = [
    "Elevation",
    "Aspect",
    "Slope",
    "Horizontal_Distance_To_Hydrology",
    "Vertical_Distance_To_Hydrology",
    "Horizontal_Distance_To_Roadways",
    "Hillshade_9am",
    "Hillshade_Noon",
    "Hillshade_3pm",
    "Horizontal_Distance_To_Fire_Points",
    "Wilderness_Area",
    "Soil_Type",
    "Cover_Type",
]

TARGET_FEATURE_NAME = "Cover_Type"

TARGET_FEATURE_LABELS = ["0", "1", "2", "3", "4", "5", "6"]

NUMERIC_FEATURE_NAMES = [
    "Aspect",
    "Elevation",
    "Hillshade_3pm",
    "Hillshade_9am",
    "Hillshade_Noon",
    "Horizontal_Distance_To_Fire_Points",
    "Horizontal_Distance_To_Hydrology",
    "Horizontal_Distance_To_Roadways",
    "Slope",
    "Vertical_Distance_To_Hydrology",
]

CATEGORICAL_FEATURES_WITH_VOCABULARY = {
    "Soil_Type": [f"soil_type_{idx+1}" for idx in range(40)],
    "Wilderness_Area": [f"area_type_{idx+1}" for idx in range(4)],
}

CATEGORICAL_FEATURE_NAMES = list(CATEGORICAL_FEATURES_WITH_VOCABULARY.keys())

FEATURE_NAMES = NUMERIC_FEATURE_NAMES + CATEGORICAL_FEATURE_NAMES

COLUMN_DEFAULTS = [
    [0] if feature_name in NUMERIC_FEATURE_NAMES + [TARGET_FEATURE_NAME] else ["NA"]
    for feature_name in CSV_HEADER
]

NUM_CLASSES = len(TARGET_FEATURE_LABELS)

# Set by build() (the example writes the CSVs at module level).
train_data_file = "train_data.csv"
test_data_file = "test_data.csv"


def get_dataset_from_csv(csv_file_path, batch_size, shuffle=False):
    dataset = tf_data.experimental.make_csv_dataset(
        csv_file_path,
        batch_size=batch_size,
        column_names=CSV_HEADER,
        column_defaults=COLUMN_DEFAULTS,
        label_name=TARGET_FEATURE_NAME,
        num_epochs=1,
        header=True,
        shuffle=shuffle,
    )
    # Added (not in the example): a plain dict instead of make_csv_dataset's OrderedDict.
    dataset = dataset.map(lambda x, y: (dict(x), y))
    return dataset.cache()


learning_rate = 0.001
dropout_rate = 0.1
batch_size = 265
num_epochs = 50

hidden_units = [32, 32]


def run_experiment(model):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )

    train_dataset = get_dataset_from_csv(train_data_file, batch_size, shuffle=True)

    test_dataset = get_dataset_from_csv(test_data_file, batch_size)

    print("Start training the model...")
    history = model.fit(train_dataset, epochs=num_epochs)
    print("Model training finished")

    _, accuracy = model.evaluate(test_dataset, verbose=0)

    print(f"Test accuracy: {round(accuracy * 100, 2)}%")


def create_model_inputs():
    inputs = {}
    for feature_name in FEATURE_NAMES:
        if feature_name in NUMERIC_FEATURE_NAMES:
            inputs[feature_name] = layers.Input(
                name=feature_name, shape=(), dtype="float32"
            )
        else:
            inputs[feature_name] = layers.Input(
                name=feature_name, shape=(), dtype="string"
            )
    return inputs


def encode_inputs(inputs, use_embedding=False):
    encoded_features = []
    for feature_name in inputs:
        if feature_name in CATEGORICAL_FEATURE_NAMES:
            vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
            # Create a lookup to convert string values to an integer indices.
            # Since we are not using a mask token nor expecting any out of vocabulary
            # (oov) token, we set mask_token to None and  num_oov_indices to 0.
            lookup = layers.StringLookup(
                vocabulary=vocabulary,
                mask_token=None,
                num_oov_indices=0,
                output_mode="int" if use_embedding else "binary",
            )
            if use_embedding:
                # Convert the string input values into integer indices.
                encoded_feature = lookup(inputs[feature_name])
                embedding_dims = int(math.sqrt(len(vocabulary)))
                # Create an embedding layer with the specified dimensions.
                embedding = layers.Embedding(
                    input_dim=len(vocabulary), output_dim=embedding_dims
                )
                # Convert the index values to embedding representations.
                encoded_feature = embedding(encoded_feature)
            else:
                # Convert the string input values into a one hot encoding.
                encoded_feature = lookup(
                    keras.ops.expand_dims(inputs[feature_name], -1)
                )
        else:
            # Use the numerical features as-is.
            encoded_feature = keras.ops.expand_dims(inputs[feature_name], -1)

        encoded_features.append(encoded_feature)

    all_features = layers.concatenate(encoded_features)
    return all_features


def create_baseline_model():
    inputs = create_model_inputs()
    features = encode_inputs(inputs)

    for units in hidden_units:
        features = layers.Dense(units)(features)
        features = layers.BatchNormalization()(features)
        features = layers.ReLU()(features)
        features = layers.Dropout(dropout_rate)(features)

    outputs = layers.Dense(units=NUM_CLASSES, activation="softmax")(features)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


def create_wide_and_deep_model():
    inputs = create_model_inputs()
    wide = encode_inputs(inputs)
    wide = layers.BatchNormalization()(wide)

    deep = encode_inputs(inputs, use_embedding=True)
    for units in hidden_units:
        deep = layers.Dense(units)(deep)
        deep = layers.BatchNormalization()(deep)
        deep = layers.ReLU()(deep)
        deep = layers.Dropout(dropout_rate)(deep)

    merged = layers.concatenate([wide, deep])
    outputs = layers.Dense(units=NUM_CLASSES, activation="softmax")(merged)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


def create_deep_and_cross_model():
    inputs = create_model_inputs()
    x0 = encode_inputs(inputs, use_embedding=True)

    cross = x0
    for _ in hidden_units:
        units = cross.shape[-1]
        x = layers.Dense(units)(cross)
        cross = x0 * x + cross
    cross = layers.BatchNormalization()(cross)

    deep = x0
    for units in hidden_units:
        deep = layers.Dense(units)(deep)
        deep = layers.BatchNormalization()(deep)
        deep = layers.ReLU()(deep)
        deep = layers.Dropout(dropout_rate)(deep)

    merged = layers.concatenate([cross, deep])
    outputs = layers.Dense(units=NUM_CLASSES, activation="softmax")(merged)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


def covtype_csv(rng, n):
    """Synthetic Covertype rows in the example's CSV layout (header, integers, two string columns)."""
    cover = rng.choice(7, size=n, p=[0.365, 0.488, 0.062, 0.005, 0.016, 0.030, 0.034])
    elev_center = np.array([3130, 2920, 2390, 2220, 2790, 2420, 3360])[cover]
    elevation = np.clip(np.round(rng.normal(elev_center, 150)), 1859, 3858)
    area = np.where(cover == 3, 3, rng.choice(4, size=n, p=[0.45, 0.05, 0.44, 0.06]))
    soil = np.clip(np.round(rng.normal(22 + (elevation - 2960) / 90, 8)), 0, 39).astype(int)
    cols = {
        "Elevation": elevation,
        "Aspect": rng.integers(0, 361, n),
        "Slope": np.clip(np.round(rng.gamma(3.0, 4.7, n)), 0, 66),
        "Horizontal_Distance_To_Hydrology": np.clip(np.round(rng.gamma(1.5, 180, n)), 0, 1397),
        "Vertical_Distance_To_Hydrology": np.clip(np.round(rng.normal(46, 58, n)), -173, 601),
        "Horizontal_Distance_To_Roadways": np.clip(np.round(rng.gamma(2.0, 1175, n)), 0, 7117),
        "Hillshade_9am": np.clip(np.round(rng.normal(212, 27, n)), 0, 254),
        "Hillshade_Noon": np.clip(np.round(rng.normal(223, 20, n)), 0, 254),
        "Hillshade_3pm": np.clip(np.round(rng.normal(143, 38, n)), 0, 254),
        "Horizontal_Distance_To_Fire_Points": np.clip(np.round(rng.gamma(2.0, 990, n)), 0, 7173),
    }
    lines = [",".join(CSV_HEADER)]
    for i in range(n):
        cells = [str(int(cols[c][i])) for c in CSV_HEADER[:10]]
        cells += [f"area_type_{area[i] + 1}", f"soil_type_{soil[i] + 1}", str(int(cover[i]))]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def build(out):
    import tempfile

    import lib

    global train_data_file, test_data_file, num_epochs
    rng = lib.setup()
    tmp = tempfile.mkdtemp()
    train_data_file = os.path.join(tmp, "train_data.csv")
    test_data_file = os.path.join(tmp, "test_data.csv")
    with open(train_data_file, "w") as f:
        f.write(covtype_csv(rng, 8 * batch_size))
    with open(test_data_file, "w") as f:
        f.write(covtype_csv(rng, batch_size))
    num_epochs = 1

    baseline_model = create_baseline_model()
    run_experiment(baseline_model)
    baseline_model.save(os.path.join(out, "baseline.keras"))

    wide_and_deep_model = create_wide_and_deep_model()
    run_experiment(wide_and_deep_model)
    wide_and_deep_model.save(os.path.join(out, "wide_deep.keras"))

    deep_and_cross_model = create_deep_and_cross_model()
    run_experiment(deep_and_cross_model)
    deep_and_cross_model.save(os.path.join(out, "model.keras"))

    # The first 256 training rows as fit() receives them (file order, no shuffle).
    x, y = next(iter(get_dataset_from_csv(train_data_file, 256).as_numpy_iterator()))
    arrays = {"x_" + k: (v.astype(str) if v.dtype.kind in "OS" else v) for k, v in x.items()}
    lib.save_data(out, y=np.asarray(y), **arrays)
