"""Bidirectional LSTM on IMDB (keras-io examples/nlp/bidirectional_lstm_imdb.py), two stacked Bidirectional LSTMs on int ids, Adam without clipping.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/nlp/bidirectional_lstm_imdb.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: max_features=20000, maxlen=200, the model (int32 ids `Input(shape=(None,))` ->
Embedding(20000, 128) -> Bidirectional(LSTM(64, return_sequences=True)) ->
Bidirectional(LSTM(64)) -> Dense(1, sigmoid)), `compile(optimizer="adam",
loss="binary_crossentropy", metrics=["accuracy"])`, batch_size=32.
Changed:
- the example's module-level model code runs inside make_model()/build();
- `keras.datasets.imdb.load_data(num_words=20000)` + `pad_sequences(maxlen=200)` -> 256 synthetic
  reviews in the same form: a start token 1, word ids index_from=3 (OOV = 2, words 4..19999 ranked
  by frequency, Zipf-distributed), IMDB-like lengths (log-normal, median ~180 words), padded and
  truncated at the front to 200 by `keras.utils.pad_sequences` as in the example; labels 0/1
  (int64, shape (n,), as load_data gives them) with a weak signal (a few "positive"/"negative" words);
- `fit(..., batch_size=32, epochs=2, validation_data=...)` -> 8 steps of 32, no validation;
- saved as `model.keras` (the example does not save).
"""
import numpy as np
import keras
from keras import layers

max_features = 20000  # Only consider the top 20k words
maxlen = 200  # Only consider the first 200 words of each movie review


def make_model():
    # Input for variable-length sequences of integers
    inputs = keras.Input(shape=(None,), dtype="int32")
    # Embed each integer in a 128-dimensional vector
    x = layers.Embedding(max_features, 128)(inputs)
    # Add 2 bidirectional LSTMs
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(64))(x)
    # Add a classifier
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    return model


def build(out):
    import os

    import lib

    rng = lib.setup()
    n = 256

    def imdb_reviews(n, vocab):
        """What keras.datasets.imdb.load_data(num_words=vocab) returns: lists of ids, labels 0/1."""
        labels = rng.integers(0, 2, size=n)
        lengths = np.clip(rng.lognormal(np.log(180), 0.6, size=n), 10, 2000).astype(int)
        positive, negative = np.arange(300, 320), np.arange(320, 340)
        reviews = []
        for i, k in enumerate(lengths):
            words = rng.zipf(1.2, size=k) + 3  # 4 = most frequent word (index_from=3)
            words[words >= vocab] = 2  # out of vocabulary
            where = rng.choice(k, size=max(1, k // 40), replace=False)
            words[where] = rng.choice(positive if labels[i] else negative, size=where.size)
            reviews.append([1] + words.tolist())  # 1 = start of sequence
        return reviews, labels

    x_train, y_train = imdb_reviews(n, max_features)
    x_train = keras.utils.pad_sequences(x_train, maxlen=maxlen)
    model = make_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    lib.fit_steps(model, x_train, y_train, steps=8, batch_size=32)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
