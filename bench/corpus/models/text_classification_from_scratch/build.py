"""Text classification from scratch (keras-io examples/nlp/text_classification_from_scratch.py), Embedding + strided Conv1D on int ids vectorised outside the model.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/nlp/text_classification_from_scratch.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, authors Mark Omernick and Francois Chollet).

Kept as written: the constants (max_features=20000, embedding_dim=128, sequence_length=500),
`custom_standardization`, the model (int64 ids -> Embedding(20000, 128) -> Dropout(0.5) ->
2x Conv1D(128, 7, strides=3, relu) -> GlobalMaxPooling1D -> Dense(128, relu) -> Dropout(0.5)
-> Dense(1, sigmoid)) and `compile(loss="binary_crossentropy", optimizer="adam",
metrics=["accuracy"])`. As in the example ("option 2"), TextVectorization runs on the dataset
outside the model, so the saved model takes int ids.
Changed:
- the example's module-level model code runs inside make_model()/build();
- IMDB reviews -> 256 synthetic vectorised reviews: what TextVectorization(max_tokens=20000,
  output_sequence_length=500) gives, i.e. int64 ids with 0 = padding at the end, 1 = OOV and
  2..19999 ranked by frequency (Zipf-distributed, like words), review lengths like IMDB's
  (log-normal, median ~180 words, cut at 500); labels 0/1 (int32, as text_dataset_from_directory
  gives them) with a weak signal (a few "positive" or "negative" words per review);
- `fit(train_ds, validation_data=val_ds, epochs=3)` -> 8 steps of batch_size 32 (the example's);
- the TextVectorization layer is not adapted (no text) and the end-to-end string model is not
  built: the example saves neither; the trained int-id model is saved as `model.keras`
  (the example does not save).
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import string
import re

import keras
import tensorflow as tf
import numpy as np
from keras import layers

batch_size = 32


# Having looked at our data above, we see that the raw text contains HTML break
# tags of the form '<br />'. These tags will not be removed by the default
# standardizer (which doesn't strip HTML). Because of this, we will need to
# create a custom standardization function.
def custom_standardization(input_data):
    lowercase = tf.strings.lower(input_data)
    stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
    return tf.strings.regex_replace(
        stripped_html, f"[{re.escape(string.punctuation)}]", ""
    )


# Model constants.
max_features = 20000
embedding_dim = 128
sequence_length = 500


def make_model():
    # A integer input for vocab indices.
    inputs = keras.Input(shape=(None,), dtype="int64")

    # Next, we add a layer to map those vocab indices into a space of dimensionality
    # 'embedding_dim'.
    x = layers.Embedding(max_features, embedding_dim)(inputs)
    x = layers.Dropout(0.5)(x)

    # Conv1D + global max pooling
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)

    # We add a vanilla hidden layer:
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)

    # We project onto a single unit output layer, and squash it with a sigmoid:
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)

    model = keras.Model(inputs, predictions)

    # Compile the model with binary crossentropy loss and an adam optimizer.
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def build(out):
    import lib

    rng = lib.setup()
    n = 256

    def vectorized_reviews(n, length, vocab):
        """What TextVectorization(output_mode="int") makes of IMDB reviews, with a weak label signal."""
        labels = rng.integers(0, 2, size=n).astype("int32")
        words = rng.zipf(1.2, size=(n, length)) + 1  # 2 = most frequent word
        words[words >= vocab] = 1  # out of vocabulary -> [UNK]
        lengths = np.clip(rng.lognormal(np.log(180), 0.6, size=n), 20, length).astype(int)
        positive, negative = np.arange(300, 320), np.arange(320, 340)  # "great", "awful", ...
        for i, k in enumerate(lengths):
            where = rng.choice(k, size=max(1, k // 40), replace=False)
            words[i, where] = rng.choice(positive if labels[i] else negative, size=where.size)
            words[i, k:] = 0
        return words.astype("int64"), labels

    x_train, y_train = vectorized_reviews(n, sequence_length, max_features)
    model = make_model()
    lib.fit_steps(model, x_train, y_train, steps=8, batch_size=batch_size)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
