"""Character-level recurrent sequence-to-sequence model (keras-io examples/nlp/lstm_seq2seq.py), LSTM encoder/decoder on two one-hot inputs, RMSprop without clipping.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/nlp/lstm_seq2seq.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: latent_dim=256, batch_size=64, the training model (encoder LSTM(256,
return_state=True) on one-hot `Input(shape=(None, num_encoder_tokens))`; decoder LSTM(256,
return_sequences=True, return_state=True) on one-hot `Input(shape=(None, num_decoder_tokens))`
started from the encoder's states; Dense(num_decoder_tokens, softmax)),
`compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])`, the
one-hot vectorisation code (space-padded inputs, "\\t"/"\\n" start/end characters, targets one
step ahead), and the save as `s2s_model.keras` (the example's file name).
Changed:
- the example's module-level code runs inside build();
- the 10,000 fra-eng pairs -> 256 synthetic pairs with the same alphabets' sizes as the real
  first 10,000 pairs (71 input characters, 93 target characters): English-like strings of
  lower/upper-case words (3..15 characters, so max_encoder_seq_length ~15) and a "French"
  target that is a deterministic function of the input (each character mapped through a fixed
  permutation of the target alphabet, with each word written twice, so ~2x longer) — a learnable
  translation; vectorised by the example's own loop;
- `fit(..., epochs=100, validation_split=0.2)` -> 8 steps of 64, no validation split;
- the inference (sampling) models are not built (the example builds them after loading the file).
"""
import numpy as np
import keras
import os

batch_size = 64  # Batch size for training.
epochs = 100  # Number of epochs to train for.
latent_dim = 256  # Latent dimensionality of the encoding space.
num_samples = 10000  # Number of samples to train on.


def make_model(num_encoder_tokens, num_decoder_tokens):
    # Define an input sequence and process it.
    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
    encoder = keras.layers.LSTM(latent_dim, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)

    # We discard `encoder_outputs` and only keep the states.
    encoder_states = [state_h, state_c]

    # Set up the decoder, using `encoder_states` as initial state.
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))

    # We set up our decoder to return full output sequences,
    # and to return internal states as well. We don't use the
    # return states in the training model, but we will use them in inference.
    decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)

    # Define the model that will turn
    # `encoder_input_data` & `decoder_input_data` into `decoder_target_data`
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    return model


def vectorize(input_texts, target_texts, input_characters, target_characters):
    """The example's "Prepare the data" code, as a function."""
    input_characters = sorted(list(input_characters))
    target_characters = sorted(list(target_characters))
    num_encoder_tokens = len(input_characters)
    num_decoder_tokens = len(target_characters)
    max_encoder_seq_length = max([len(txt) for txt in input_texts])
    max_decoder_seq_length = max([len(txt) for txt in target_texts])

    input_token_index = dict([(char, i) for i, char in enumerate(input_characters)])
    target_token_index = dict([(char, i) for i, char in enumerate(target_characters)])

    encoder_input_data = np.zeros(
        (len(input_texts), max_encoder_seq_length, num_encoder_tokens),
        dtype="float32",
    )
    decoder_input_data = np.zeros(
        (len(input_texts), max_decoder_seq_length, num_decoder_tokens),
        dtype="float32",
    )
    decoder_target_data = np.zeros(
        (len(input_texts), max_decoder_seq_length, num_decoder_tokens),
        dtype="float32",
    )

    for i, (input_text, target_text) in enumerate(zip(input_texts, target_texts)):
        for t, char in enumerate(input_text):
            encoder_input_data[i, t, input_token_index[char]] = 1.0
        encoder_input_data[i, t + 1 :, input_token_index[" "]] = 1.0
        for t, char in enumerate(target_text):
            # decoder_target_data is ahead of decoder_input_data by one timestep
            decoder_input_data[i, t, target_token_index[char]] = 1.0
            if t > 0:
                # decoder_target_data will be ahead by one timestep
                # and will not include the start character.
                decoder_target_data[i, t - 1, target_token_index[char]] = 1.0
        decoder_input_data[i, t + 1 :, target_token_index[" "]] = 1.0
        decoder_target_data[i, t:, target_token_index[" "]] = 1.0
    return encoder_input_data, decoder_input_data, decoder_target_data


def build(out):
    import string

    import lib

    rng = lib.setup()
    n = 256

    # Alphabets of the sizes the real first 10,000 fra-eng pairs have (71 and 93 characters).
    english = sorted(set(" !\"$%&',-.0123456789:?" + string.ascii_letters))[:71]
    french = sorted(set(english) | set("\t\n«»àâçèéêëîïôùûœÀÇÉÊ’–"))[:93]
    letters = [c for c in english if c.isalpha()]
    mapping = dict(zip(english, rng.permutation([c for c in french if c not in "\t\n "])[:71]))
    mapping[" "] = " "
    input_texts, target_texts = [], []
    input_characters, target_characters = set(english), set(french)
    for _ in range(n):
        words = []
        while sum(len(w) + 1 for w in words) < rng.integers(4, 15):
            words.append("".join(rng.choice(letters, size=rng.integers(1, 6))))
        input_text = (" ".join(words))[:14] + rng.choice(list(".!?"))
        translated = ["".join(mapping[c] for c in w) for w in input_text.split(" ")]
        target_text = " ".join(w + w for w in translated)
        # We use "tab" as the "start sequence" character
        # for the targets, and "\n" as "end sequence" character.
        target_text = "\t" + target_text + "\n"
        input_texts.append(input_text)
        target_texts.append(target_text)

    encoder_input_data, decoder_input_data, decoder_target_data = vectorize(
        input_texts, target_texts, input_characters, target_characters
    )
    model = make_model(len(input_characters), len(target_characters))
    model.compile(
        optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"]
    )
    lib.fit_steps(model, [encoder_input_data, decoder_input_data], decoder_target_data, steps=8,
                  batch_size=batch_size)
    # Save model
    model.save(os.path.join(out, "s2s_model.keras"))
    names = [t._keras_history.operation.name for t in model.inputs]  # the InputLayers' names
    lib.save_data(out, **{"x_" + names[0]: encoder_input_data, "x_" + names[1]: decoder_input_data,
                          "y": decoder_target_data})
