"""TabTransformer (keras-io examples/structured_data/tabtransformer.py), 13 scalar dict inputs (categorical indices as float32), transformer blocks over column embeddings, AdamW, and the example's MLP baseline.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/structured_data/tabtransformer.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Khalid Salama).

Kept as written: the dataset metadata, hyperparameters (LEARNING_RATE 0.001, WEIGHT_DECAY
1e-4, DROPOUT_RATE 0.2, BATCH_SIZE 265, 3 transformer blocks, 4 heads, EMBEDDING_DIMS 16,
MLP factors [2, 1], 2 MLP blocks), the input pipeline (make_csv_dataset, target
StringLookup, fnlwgt popped as sample weights, categorical strings turned into indices
by StringLookups OUTSIDE the model), create_model_inputs (every input shape () float32,
also the categorical indices), encode_inputs, create_mlp, create_baseline_model,
create_tabtransformer_classifier, run_experiment (AdamW, BinaryCrossentropy, BinaryAccuracy,
fit then evaluate). Numerical features reach the model raw (age, capital_gain up to
99,999, ...), as in the example.
Changed:
- the UCI Adult CSVs (downloaded, read with pandas) -> 2,120 synthetic training rows and
  265 test rows written to CSV the way the example writes them (pandas to_csv, no header:
  numbers bare, strings with adult.data's leading space): age 17..90, fnlwgt 12,285..1.48M,
  education_num 1..16, capital_gain 0..99,999 (mostly 0), capital_loss 0..4,356 (mostly 0),
  hours_per_week 1..99, the real category vocabularies (workclass 9, education 16,
  marital_status 7, occupation 15, relationship 6, race 5, gender 2, native_country 42,
  including " ?"), income_bracket " <=50K"/" >50K" (about 24% ">50K", depending on the
  features). CATEGORICAL_FEATURES_WITH_VOCABULARY lists those vocabularies (the example
  reads them off the DataFrame);
- one line added to get_dataset_from_csv: `.map(lambda x, y, w: (dict(x), y, w))`. As
  written the example cannot train on Keras 3.15 / TF 2.21: make_csv_dataset yields
  OrderedDicts, and Keras 3.15 binds an OrderedDict to the model's dict of inputs by
  position (optree flattens an OrderedDict in insertion order, a dict in sorted key order),
  so CSV-ordered columns reach sorted-name inputs and fit() fails with
  "InvalidArgumentError: indices[9] = 99999 is not in [0, 15) [[{{node
  functional_3_1/embedding_3_1/GatherV2}}]]" (capital_gain fed to the occupation
  embedding). The plain dict is bound by name, as the example intends;
- the example's module-level code (lookups, models, experiments) runs inside build();
- NUM_EPOCHS 15 -> 1 epoch of the 2,120 rows = 8 steps of 265 (the example's run_experiment
  is called as written, with the small CSVs);
- the example does not save; `tabtransformer_model` is saved as `model.keras`, and the
  example's `baseline_model` (trained the same way) as `baseline.keras`;
- data.npz holds the first 256 training rows as fit() receives them: `x_<feature>` of shape
  (256,) (int64 indices for the categoricals, float32 numbers), `y` int64 0/1 of shape
  (256,); the fnlwgt sample weights the example trains with cannot go into --data.
"""
import math
import os
from functools import partial

import numpy as np
import keras
from keras import layers
from keras import ops
from tensorflow import data as tf_data

CSV_HEADER = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income_bracket",
]

# A list of the numerical feature names.
NUMERIC_FEATURE_NAMES = [
    "age",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
]
# A dictionary of the categorical features and their vocabulary (the UCI Adult values,
# which the example reads off the training DataFrame: sorted, with their leading space).
CATEGORICAL_FEATURES_WITH_VOCABULARY = {
    "workclass": [" ?", " Federal-gov", " Local-gov", " Never-worked", " Private", " Self-emp-inc",
                  " Self-emp-not-inc", " State-gov", " Without-pay"],
    "education": [" 10th", " 11th", " 12th", " 1st-4th", " 5th-6th", " 7th-8th", " 9th", " Assoc-acdm",
                  " Assoc-voc", " Bachelors", " Doctorate", " HS-grad", " Masters", " Preschool",
                  " Prof-school", " Some-college"],
    "marital_status": [" Divorced", " Married-AF-spouse", " Married-civ-spouse", " Married-spouse-absent",
                       " Never-married", " Separated", " Widowed"],
    "occupation": [" ?", " Adm-clerical", " Armed-Forces", " Craft-repair", " Exec-managerial",
                   " Farming-fishing", " Handlers-cleaners", " Machine-op-inspct", " Other-service",
                   " Priv-house-serv", " Prof-specialty", " Protective-serv", " Sales", " Tech-support",
                   " Transport-moving"],
    "relationship": [" Husband", " Not-in-family", " Other-relative", " Own-child", " Unmarried", " Wife"],
    "race": [" Amer-Indian-Eskimo", " Asian-Pac-Islander", " Black", " Other", " White"],
    "gender": [" Female", " Male"],
    "native_country": [" ?", " Cambodia", " Canada", " China", " Columbia", " Cuba", " Dominican-Republic",
                       " Ecuador", " El-Salvador", " England", " France", " Germany", " Greece", " Guatemala",
                       " Haiti", " Holand-Netherlands", " Honduras", " Hong", " Hungary", " India", " Iran",
                       " Ireland", " Italy", " Jamaica", " Japan", " Laos", " Mexico", " Nicaragua",
                       " Outlying-US(Guam-USVI-etc)", " Peru", " Philippines", " Poland", " Portugal",
                       " Puerto-Rico", " Scotland", " South", " Taiwan", " Thailand", " Trinadad&Tobago",
                       " United-States", " Vietnam", " Yugoslavia"],
}
# Name of the column to be used as instances weight.
WEIGHT_COLUMN_NAME = "fnlwgt"
# A list of the categorical feature names.
CATEGORICAL_FEATURE_NAMES = list(CATEGORICAL_FEATURES_WITH_VOCABULARY.keys())
# A list of all the input features.
FEATURE_NAMES = NUMERIC_FEATURE_NAMES + CATEGORICAL_FEATURE_NAMES
# A list of column default values for each feature.
COLUMN_DEFAULTS = [
    [0.0] if feature_name in NUMERIC_FEATURE_NAMES + [WEIGHT_COLUMN_NAME] else ["NA"]
    for feature_name in CSV_HEADER
]
# The name of the target feature.
TARGET_FEATURE_NAME = "income_bracket"
# A list of the labels of the target features.
TARGET_LABELS = [" <=50K", " >50K"]

LEARNING_RATE = 0.001
WEIGHT_DECAY = 0.0001
DROPOUT_RATE = 0.2
BATCH_SIZE = 265
NUM_EPOCHS = 15

NUM_TRANSFORMER_BLOCKS = 3  # Number of transformer blocks.
NUM_HEADS = 4  # Number of attention heads.
EMBEDDING_DIMS = 16  # Embedding dimensions of the categorical features.
MLP_HIDDEN_UNITS_FACTORS = [
    2,
    1,
]  # MLP hidden layer units, as factors of the number of inputs.
NUM_MLP_BLOCKS = 2  # Number of MLP blocks in the baseline model.

# Filled by make_lookups() (the example creates these at module level).
target_label_lookup = None
lookup_dict = {}


def make_lookups():
    global target_label_lookup
    target_label_lookup = layers.StringLookup(
        vocabulary=TARGET_LABELS, mask_token=None, num_oov_indices=0
    )
    for feature_name in CATEGORICAL_FEATURE_NAMES:
        vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
        # Create a lookup to convert a string values to an integer indices.
        # Since we are not using a mask token, nor expecting any out of vocabulary
        # (oov) token, we set mask_token to None and num_oov_indices to 0.
        lookup = layers.StringLookup(
            vocabulary=vocabulary, mask_token=None, num_oov_indices=0
        )
        lookup_dict[feature_name] = lookup


def prepare_example(features, target):
    target_index = target_label_lookup(target)
    weights = features.pop(WEIGHT_COLUMN_NAME)
    return features, target_index, weights


def encode_categorical(batch_x, batch_y, weights):
    for feature_name in CATEGORICAL_FEATURE_NAMES:
        batch_x[feature_name] = lookup_dict[feature_name](batch_x[feature_name])

    return batch_x, batch_y, weights


def get_dataset_from_csv(csv_file_path, batch_size=128, shuffle=False):
    dataset = (
        tf_data.experimental.make_csv_dataset(
            csv_file_path,
            batch_size=batch_size,
            column_names=CSV_HEADER,
            column_defaults=COLUMN_DEFAULTS,
            label_name=TARGET_FEATURE_NAME,
            num_epochs=1,
            header=False,
            na_value="?",
            shuffle=shuffle,
        )
        .map(prepare_example, num_parallel_calls=tf_data.AUTOTUNE, deterministic=False)
        .map(encode_categorical)
        # Added (not in the example): a plain dict instead of make_csv_dataset's OrderedDict;
        # see the module docstring for the error the example gives on Keras 3.15 without it.
        .map(lambda x, y, w: (dict(x), y, w))
    )
    return dataset.cache()


def run_experiment(
    model,
    train_data_file,
    test_data_file,
    num_epochs,
    learning_rate,
    weight_decay,
    batch_size,
):
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay
    )

    model.compile(
        optimizer=optimizer,
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )

    train_dataset = get_dataset_from_csv(train_data_file, batch_size, shuffle=True)
    validation_dataset = get_dataset_from_csv(test_data_file, batch_size)

    print("Start training the model...")
    history = model.fit(
        train_dataset, epochs=num_epochs, validation_data=validation_dataset
    )
    print("Model training finished")

    _, accuracy = model.evaluate(validation_dataset, verbose=0)

    print(f"Validation accuracy: {round(accuracy * 100, 2)}%")

    return history


def create_model_inputs():
    inputs = {}
    for feature_name in FEATURE_NAMES:
        if feature_name in NUMERIC_FEATURE_NAMES:
            inputs[feature_name] = layers.Input(
                name=feature_name, shape=(), dtype="float32"
            )
        else:
            inputs[feature_name] = layers.Input(
                name=feature_name, shape=(), dtype="float32"
            )
    return inputs


def encode_inputs(inputs, embedding_dims):
    encoded_categorical_feature_list = []
    numerical_feature_list = []

    for feature_name in inputs:
        if feature_name in CATEGORICAL_FEATURE_NAMES:
            vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
            # Create a lookup to convert a string values to an integer indices.
            # Since we are not using a mask token, nor expecting any out of vocabulary
            # (oov) token, we set mask_token to None and num_oov_indices to 0.

            # Convert the string input values into integer indices.

            # Create an embedding layer with the specified dimensions.
            embedding = layers.Embedding(
                input_dim=len(vocabulary), output_dim=embedding_dims
            )

            # Convert the index values to embedding representations.
            encoded_categorical_feature = embedding(inputs[feature_name])
            encoded_categorical_feature_list.append(encoded_categorical_feature)

        else:
            # Use the numerical features as-is.
            numerical_feature = ops.expand_dims(inputs[feature_name], -1)
            numerical_feature_list.append(numerical_feature)

    return encoded_categorical_feature_list, numerical_feature_list


def create_mlp(hidden_units, dropout_rate, activation, normalization_layer, name=None):
    mlp_layers = []
    for units in hidden_units:
        mlp_layers.append(normalization_layer()),
        mlp_layers.append(layers.Dense(units, activation=activation))
        mlp_layers.append(layers.Dropout(dropout_rate))

    return keras.Sequential(mlp_layers, name=name)


def create_baseline_model(
    embedding_dims, num_mlp_blocks, mlp_hidden_units_factors, dropout_rate
):
    # Create model inputs.
    inputs = create_model_inputs()
    # encode features.
    encoded_categorical_feature_list, numerical_feature_list = encode_inputs(
        inputs, embedding_dims
    )
    # Concatenate all features.
    features = layers.concatenate(
        encoded_categorical_feature_list + numerical_feature_list
    )
    # Compute Feedforward layer units.
    feedforward_units = [features.shape[-1]]

    # Create several feedforwad layers with skip connections.
    for layer_idx in range(num_mlp_blocks):
        features = create_mlp(
            hidden_units=feedforward_units,
            dropout_rate=dropout_rate,
            activation=keras.activations.gelu,
            normalization_layer=layers.LayerNormalization,
            name=f"feedforward_{layer_idx}",
        )(features)

    # Compute MLP hidden_units.
    mlp_hidden_units = [
        factor * features.shape[-1] for factor in mlp_hidden_units_factors
    ]
    # Create final MLP.
    features = create_mlp(
        hidden_units=mlp_hidden_units,
        dropout_rate=dropout_rate,
        activation=keras.activations.selu,
        normalization_layer=layers.BatchNormalization,
        name="MLP",
    )(features)

    # Add a sigmoid as a binary classifer.
    outputs = layers.Dense(units=1, activation="sigmoid", name="sigmoid")(features)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


def create_tabtransformer_classifier(
    num_transformer_blocks,
    num_heads,
    embedding_dims,
    mlp_hidden_units_factors,
    dropout_rate,
    use_column_embedding=False,
):
    # Create model inputs.
    inputs = create_model_inputs()
    # encode features.
    encoded_categorical_feature_list, numerical_feature_list = encode_inputs(
        inputs, embedding_dims
    )
    # Stack categorical feature embeddings for the Tansformer.
    encoded_categorical_features = ops.stack(encoded_categorical_feature_list, axis=1)
    # Concatenate numerical features.
    numerical_features = layers.concatenate(numerical_feature_list)

    # Add column embedding to categorical feature embeddings.
    if use_column_embedding:
        num_columns = encoded_categorical_features.shape[1]
        column_embedding = layers.Embedding(
            input_dim=num_columns, output_dim=embedding_dims
        )
        column_indices = ops.arange(start=0, stop=num_columns, step=1)
        encoded_categorical_features = encoded_categorical_features + column_embedding(
            column_indices
        )

    # Create multiple layers of the Transformer block.
    for block_idx in range(num_transformer_blocks):
        # Create a multi-head attention layer.
        attention_output = layers.MultiHeadAttention(
            num_heads=num_heads,
            key_dim=embedding_dims,
            dropout=dropout_rate,
            name=f"multihead_attention_{block_idx}",
        )(encoded_categorical_features, encoded_categorical_features)
        # Skip connection 1.
        x = layers.Add(name=f"skip_connection1_{block_idx}")(
            [attention_output, encoded_categorical_features]
        )
        # Layer normalization 1.
        x = layers.LayerNormalization(name=f"layer_norm1_{block_idx}", epsilon=1e-6)(x)
        # Feedforward.
        feedforward_output = create_mlp(
            hidden_units=[embedding_dims],
            dropout_rate=dropout_rate,
            activation=keras.activations.gelu,
            normalization_layer=partial(
                layers.LayerNormalization, epsilon=1e-6
            ),  # using partial to provide keyword arguments before initialization
            name=f"feedforward_{block_idx}",
        )(x)
        # Skip connection 2.
        x = layers.Add(name=f"skip_connection2_{block_idx}")([feedforward_output, x])
        # Layer normalization 2.
        encoded_categorical_features = layers.LayerNormalization(
            name=f"layer_norm2_{block_idx}", epsilon=1e-6
        )(x)

    # Flatten the "contextualized" embeddings of the categorical features.
    categorical_features = layers.Flatten()(encoded_categorical_features)
    # Apply layer normalization to the numerical features.
    numerical_features = layers.LayerNormalization(epsilon=1e-6)(numerical_features)
    # Prepare the input for the final MLP block.
    features = layers.concatenate([categorical_features, numerical_features])

    # Compute MLP hidden_units.
    mlp_hidden_units = [
        factor * features.shape[-1] for factor in mlp_hidden_units_factors
    ]
    # Create final MLP.
    features = create_mlp(
        hidden_units=mlp_hidden_units,
        dropout_rate=dropout_rate,
        activation=keras.activations.selu,
        normalization_layer=layers.BatchNormalization,
        name="MLP",
    )(features)

    # Add a sigmoid as a binary classifer.
    outputs = layers.Dense(units=1, activation="sigmoid", name="sigmoid")(features)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


def adult_rows(rng, n):
    """Synthetic UCI Adult rows: real units, ranges and vocabularies, income depending on the features."""
    voc = CATEGORICAL_FEATURES_WITH_VOCABULARY

    def pick(name, weights):
        p = np.asarray(weights, dtype=float)
        return rng.choice(len(voc[name]), size=n, p=p / p.sum())

    age = np.clip(np.round(rng.gamma(6.0, 6.5, n) + 10), 17, 90)
    fnlwgt = np.clip(np.round(rng.lognormal(12.0, 0.5, n)), 12285, 1484705)
    education = pick("education", [3, 4, 1, 0.5, 1, 2, 1.5, 3, 4, 16, 1, 32, 5, 0.2, 2, 22])
    education_num = np.array([6, 7, 8, 2, 3, 4, 5, 12, 11, 13, 16, 9, 14, 1, 15, 10])[education]
    workclass = pick("workclass", [6, 3, 6, 0.1, 70, 3, 8, 4, 0.1])
    marital = pick("marital_status", [14, 0.1, 46, 1.3, 33, 3, 3])
    occupation = pick("occupation", [6, 12, 0.1, 13, 12, 3, 4, 6, 10, 0.5, 13, 2, 11, 3, 5])
    relationship = pick("relationship", [40, 25, 3, 16, 11, 5])
    race = pick("race", [1, 3, 10, 1, 85])
    gender = pick("gender", [33, 67])
    country = pick("native_country", [2] + [0.3] * 25 + [2] + [0.3] * 12 + [90, 0.3, 0.3])
    capital_gain = np.where(rng.uniform(size=n) < 0.08, np.round(rng.lognormal(8.5, 1.0, n)), 0)
    capital_gain = np.where(rng.uniform(size=n) < 0.005, 99999, np.minimum(capital_gain, 99999))
    capital_loss = np.where(rng.uniform(size=n) < 0.05, np.clip(np.round(rng.normal(1870, 360, n)), 155, 4356), 0)
    hours = np.clip(np.round(rng.normal(40.4, 12.3, n)), 1, 99)
    score = (0.04 * (age - 38) + 0.35 * (education_num - 10) + 1.6 * (marital == 2)
             + 0.03 * (hours - 40) + 2.0 * (capital_gain > 5000) - 2.2)
    income = (rng.uniform(size=n) < 1 / (1 + np.exp(-score))).astype(int)
    columns = {
        "age": age, "workclass": workclass, "fnlwgt": fnlwgt, "education": education,
        "education_num": education_num, "marital_status": marital, "occupation": occupation,
        "relationship": relationship, "race": race, "gender": gender, "capital_gain": capital_gain,
        "capital_loss": capital_loss, "hours_per_week": hours, "native_country": country,
        "income_bracket": income,
    }
    lines = []
    for i in range(n):
        cells = []
        for name in CSV_HEADER:
            v = columns[name][i]
            if name in voc:
                cells.append(voc[name][v])
            elif name == TARGET_FEATURE_NAME:
                cells.append(TARGET_LABELS[v])
            else:
                cells.append(str(int(v)))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def build(out):
    import tempfile

    import lib

    rng = lib.setup()
    make_lookups()
    tmp = tempfile.mkdtemp()
    train_data_file = os.path.join(tmp, "train_data.csv")
    test_data_file = os.path.join(tmp, "test_data.csv")
    with open(train_data_file, "w") as f:
        f.write(adult_rows(rng, 8 * BATCH_SIZE))
    with open(test_data_file, "w") as f:
        f.write(adult_rows(rng, BATCH_SIZE))

    baseline_model = create_baseline_model(
        embedding_dims=EMBEDDING_DIMS,
        num_mlp_blocks=NUM_MLP_BLOCKS,
        mlp_hidden_units_factors=MLP_HIDDEN_UNITS_FACTORS,
        dropout_rate=DROPOUT_RATE,
    )
    run_experiment(
        model=baseline_model,
        train_data_file=train_data_file,
        test_data_file=test_data_file,
        num_epochs=1,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        batch_size=BATCH_SIZE,
    )
    baseline_model.save(os.path.join(out, "baseline.keras"))

    tabtransformer_model = create_tabtransformer_classifier(
        num_transformer_blocks=NUM_TRANSFORMER_BLOCKS,
        num_heads=NUM_HEADS,
        embedding_dims=EMBEDDING_DIMS,
        mlp_hidden_units_factors=MLP_HIDDEN_UNITS_FACTORS,
        dropout_rate=DROPOUT_RATE,
    )
    run_experiment(
        model=tabtransformer_model,
        train_data_file=train_data_file,
        test_data_file=test_data_file,
        num_epochs=1,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        batch_size=BATCH_SIZE,
    )
    tabtransformer_model.save(os.path.join(out, "model.keras"))

    # The first 256 training rows as fit() receives them (unshuffled file order).
    x, y, _ = next(iter(get_dataset_from_csv(train_data_file, 256).as_numpy_iterator()))
    lib.save_data(out, y=np.asarray(y), **{"x_" + k: np.asarray(v) for k, v in x.items()})
