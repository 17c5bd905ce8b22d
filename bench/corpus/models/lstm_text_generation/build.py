"""Character-level text generation with LSTM (keras-io examples/generative/lstm_character_level_text_generation.py), a Sequential LSTM(128) on one-hot (bool) characters trained by RMSprop(0.01) without clipping.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/generative/lstm_character_level_text_generation.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: the preprocessing (lower-cased text, newlines to spaces, sorted character
set, sequences of maxlen 40 every step 3 characters, x one-hot of dtype bool (N, 40, chars),
y one-hot bool (N, chars)), the model (Input (40, chars), LSTM(128), Dense(chars, softmax)),
`RMSprop(learning_rate=0.01)` with categorical_crossentropy, batch_size 128, and the
`sample()` helper.
Changed:
- nietzsche.txt (downloaded, ~600k characters, 56 distinct) -> about 3,200 characters of
  synthetic English-like prose drawn from a word list with punctuation, digits and quotes
  (its character set has 40 characters where the real text has 56, so x is (N, 40, 40));
- the example's module-level code runs inside build(); the per-epoch text generation is not run;
- 40 epochs of `fit(x, y, batch_size=128, epochs=1)` -> one epoch of 1,024 sequences (8 steps);
- the example does not save; saved as `model.keras`;
- data.npz holds the first 256 sequences as fit() receives them: x bool (256, 40, chars),
  y bool (256, chars).
"""
import numpy as np
import keras
from keras import layers

maxlen = 40
step = 3


def sample(preds, temperature=1.0):
    # helper function to sample an index from a probability array
    preds = np.asarray(preds).astype("float64")
    preds = np.log(preds) / temperature
    exp_preds = np.exp(preds)
    preds = exp_preds / np.sum(exp_preds)
    probas = np.random.multinomial(1, preds, 1)
    return np.argmax(probas)


def make_model(chars):
    model = keras.Sequential(
        [
            keras.Input(shape=(maxlen, len(chars))),
            layers.LSTM(128),
            layers.Dense(len(chars), activation="softmax"),
        ]
    )
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)
    return model


WORDS = ("the of and to in is that it as be which for not this with he his by or we are all but one "
         "what man will from have has must only their our truth morality philosophers himself itself "
         "spirit power life every there more such who so also free will german soul 1886 2nd jesus "
         "kant plato schopenhauer virtue belief knowledge nature evil good thought religion").split()
PUNCT = [", ", ". ", "; ", ": ", "! ", "? ", "--", " (", ") ", '"', "'", "-", "_", " "]


def synthetic_text(rng, length):
    out = []
    n = 0
    while n < length:
        piece = str(rng.choice(WORDS))
        if rng.uniform() < 0.08:
            piece = piece.capitalize()
        sep = str(rng.choice(PUNCT, p=[0.08, 0.06, 0.02, 0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.01, 0.01,
                                       0.01, 0.72]))
        out.append(piece + sep)
        n += len(piece) + len(sep)
    return "".join(out)


def build(out):
    import os

    import lib

    rng = lib.setup()
    text = synthetic_text(rng, 1024 * step + maxlen + 8).lower()
    text = text.replace("\n", " ")  # We remove newlines chars for nicer display

    chars = sorted(list(set(text)))
    char_indices = dict((c, i) for i, c in enumerate(chars))

    # cut the text in semi-redundant sequences of maxlen characters
    sentences = []
    next_chars = []
    for i in range(0, len(text) - maxlen, step):
        sentences.append(text[i : i + maxlen])
        next_chars.append(text[i + maxlen])
    sentences, next_chars = sentences[:1024], next_chars[:1024]

    x = np.zeros((len(sentences), maxlen, len(chars)), dtype="bool")
    y = np.zeros((len(sentences), len(chars)), dtype="bool")
    for i, sentence in enumerate(sentences):
        for t, char in enumerate(sentence):
            x[i, t, char_indices[char]] = 1
        y[i, char_indices[next_chars[i]]] = 1

    model = make_model(chars)
    batch_size = 128
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x[:256], y=y[:256])
