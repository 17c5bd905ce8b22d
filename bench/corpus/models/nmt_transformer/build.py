"""English-to-Spanish translation with a sequence-to-sequence Transformer (keras-io examples/nlp/neural_machine_translation_with_transformer.py), PositionalEmbedding and TransformerEncoder/Decoder custom layers with padding and causal masks, a nested decoder model.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/nlp/neural_machine_translation_with_transformer.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: `custom_standardization`, the classes TransformerEncoder, PositionalEmbedding
(including its compute_mask, which returns None when no mask comes in, so as written no padding
mask ever reaches the encoder or the cross-attention) and TransformerDecoder with their
get_config; the model assembly (encoder model, decoder model with inputs "decoder_inputs" and
"decoder_state_inputs", Dropout(0.5), Dense(vocab_size, softmax), the "transformer" model with
inputs "encoder_inputs"/"decoder_inputs"); sequence_length=20, batch_size=64;
`compile("rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])`; the data
format of `format_dataset` (encoder ids of length 20, decoder ids = spa[:, :-1], targets =
spa[:, 1:], 0 = padding).
Changed (shrunk for CPU):
- vocab_size 15000 -> 2000, embed_dim 256 -> 64, latent_dim 2048 -> 256, num_heads 8 -> 2
  (key_dim stays embed_dim per head, as written);
- the example's module-level model code runs inside make_model()/build();
- the spa-eng pairs -> 256 synthetic vectorised pairs in the form TextVectorization gives
  (ids with 0 = padding at the end, 1 = OOV, 2.. by frequency, Zipf-distributed; English
  3..14 words; the Spanish side "[start] ... [end]" (ids 2 and 3, the most frequent tokens),
  a deterministic word-by-word function of the English ids, so it is learnable);
- `fit(train_ds, epochs=1, validation_data=val_ds)` -> 8 steps of 64, no validation;
- the example as written cannot be built on Keras 3.15: calling its TransformerDecoder on a
  `keras.Input` raises "OperatorNotAllowedInGraphError: Exception encountered when calling
  TransformerDecoder.call(). Could not automatically infer the output shape / dtype of
  'transformer_decoder' (of type TransformerDecoder) ... Iterating over a symbolic `tf.Tensor` is
  not allowed" (Keras 3.15's TensorFlow `ops.tile` iterates over its `repeats`, here a tensor).
  The model uses TransformerDecoderK315, the example's class with only get_causal_attention_mask
  overridden to build the same (batch, L, L) mask with `ops.broadcast_to` instead of `ops.tile`;
- saved as `model.keras` (the example does not save).
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import string
import re
import numpy as np
import tensorflow.strings as tf_strings
import keras
from keras import layers
from keras import ops

strip_chars = string.punctuation + "¿"
strip_chars = strip_chars.replace("[", "")
strip_chars = strip_chars.replace("]", "")

vocab_size = 2000  # upstream 15000
sequence_length = 20
batch_size = 64


def custom_standardization(input_string):
    lowercase = tf_strings.lower(input_string)
    return tf_strings.regex_replace(lowercase, "[%s]" % re.escape(strip_chars), "")


import keras.ops as ops


class TransformerEncoder(layers.Layer):
    def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.dense_dim = dense_dim
        self.num_heads = num_heads
        self.attention = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim
        )
        self.dense_proj = keras.Sequential(
            [
                layers.Dense(dense_dim, activation="relu"),
                layers.Dense(embed_dim),
            ]
        )
        self.layernorm_1 = layers.LayerNormalization()
        self.layernorm_2 = layers.LayerNormalization()
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            padding_mask = ops.cast(mask[:, None, :], dtype="int32")
        else:
            padding_mask = None

        attention_output = self.attention(
            query=inputs, value=inputs, key=inputs, attention_mask=padding_mask
        )
        proj_input = self.layernorm_1(inputs + attention_output)
        proj_output = self.dense_proj(proj_input)
        return self.layernorm_2(proj_input + proj_output)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "dense_dim": self.dense_dim,
                "num_heads": self.num_heads,
            }
        )
        return config


class PositionalEmbedding(layers.Layer):
    def __init__(self, sequence_length, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_embeddings = layers.Embedding(
            input_dim=vocab_size, output_dim=embed_dim
        )
        self.position_embeddings = layers.Embedding(
            input_dim=sequence_length, output_dim=embed_dim
        )
        self.sequence_length = sequence_length
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim

    def call(self, inputs):
        length = ops.shape(inputs)[-1]
        positions = ops.arange(0, length, 1)
        embedded_tokens = self.token_embeddings(inputs)
        embedded_positions = self.position_embeddings(positions)
        return embedded_tokens + embedded_positions

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        else:
            return ops.not_equal(inputs, 0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim,
            }
        )
        return config


class TransformerDecoder(layers.Layer):
    def __init__(self, embed_dim, latent_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.latent_dim = latent_dim
        self.num_heads = num_heads
        self.attention_1 = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim
        )
        self.attention_2 = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim
        )
        self.dense_proj = keras.Sequential(
            [
                layers.Dense(latent_dim, activation="relu"),
                layers.Dense(embed_dim),
            ]
        )
        self.layernorm_1 = layers.LayerNormalization()
        self.layernorm_2 = layers.LayerNormalization()
        self.layernorm_3 = layers.LayerNormalization()
        self.supports_masking = True

    def call(self, inputs, encoder_outputs, mask=None):
        causal_mask = self.get_causal_attention_mask(inputs)
        if mask is not None:
            padding_mask = ops.cast(mask[:, None, :], dtype="int32")
            padding_mask = ops.minimum(padding_mask, causal_mask)
        else:
            padding_mask = None

        attention_output_1 = self.attention_1(
            query=inputs, value=inputs, key=inputs, attention_mask=causal_mask
        )
        out_1 = self.layernorm_1(inputs + attention_output_1)

        attention_output_2 = self.attention_2(
            query=out_1,
            value=encoder_outputs,
            key=encoder_outputs,
            attention_mask=padding_mask,
        )
        out_2 = self.layernorm_2(out_1 + attention_output_2)

        proj_output = self.dense_proj(out_2)
        return self.layernorm_3(out_2 + proj_output)

    def get_causal_attention_mask(self, inputs):
        input_shape = ops.shape(inputs)
        batch_size, sequence_length = input_shape[0], input_shape[1]
        i = ops.arange(sequence_length)[:, None]
        j = ops.arange(sequence_length)
        mask = ops.cast(i >= j, dtype="int32")
        mask = ops.reshape(mask, (1, input_shape[1], input_shape[1]))
        mult = ops.concatenate(
            [ops.expand_dims(batch_size, -1), ops.convert_to_tensor([1, 1])],
            axis=0,
        )
        return ops.tile(mask, mult)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "latent_dim": self.latent_dim,
                "num_heads": self.num_heads,
            }
        )
        return config


class TransformerDecoderK315(TransformerDecoder):
    """The example's TransformerDecoder with its causal mask tiled in a way Keras 3.15 can trace (not in the example).

    As written, `ops.tile(mask, mult)` with `mult` a symbolic tensor fails on Keras 3.15's
    TensorFlow backend, which iterates over `repeats` (keras/src/backend/tensorflow/numpy.py
    tile: `repeats = [v for v in repeats]`), so the decoder cannot even be called on a
    `keras.Input`: "OperatorNotAllowedInGraphError: ... Could not automatically infer the output
    shape / dtype of 'transformer_decoder' (of type TransformerDecoder) ... Iterating over a
    symbolic `tf.Tensor` is not allowed". The same mask of shape (batch, L, L) is built with
    `ops.broadcast_to`; everything else is inherited unchanged.
    """

    def get_causal_attention_mask(self, inputs):
        input_shape = ops.shape(inputs)
        batch_size, sequence_length = input_shape[0], input_shape[1]
        i = ops.arange(sequence_length)[:, None]
        j = ops.arange(sequence_length)
        mask = ops.cast(i >= j, dtype="int32")
        mask = ops.reshape(mask, (1, input_shape[1], input_shape[1]))
        return ops.broadcast_to(mask, (batch_size, sequence_length, sequence_length))


embed_dim = 64  # upstream 256
latent_dim = 256  # upstream 2048
num_heads = 2  # upstream 8


def make_model():
    encoder_inputs = keras.Input(shape=(None,), dtype="int64", name="encoder_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(encoder_inputs)
    encoder_outputs = TransformerEncoder(embed_dim, latent_dim, num_heads)(x)
    encoder = keras.Model(encoder_inputs, encoder_outputs)

    decoder_inputs = keras.Input(shape=(None,), dtype="int64", name="decoder_inputs")
    encoded_seq_inputs = keras.Input(shape=(None, embed_dim), name="decoder_state_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(decoder_inputs)
    x = TransformerDecoderK315(embed_dim, latent_dim, num_heads)(x, encoded_seq_inputs)
    x = layers.Dropout(0.5)(x)
    decoder_outputs = layers.Dense(vocab_size, activation="softmax")(x)
    decoder = keras.Model([decoder_inputs, encoded_seq_inputs], decoder_outputs)

    decoder_outputs = decoder([decoder_inputs, encoder_outputs])
    transformer = keras.Model(
        [encoder_inputs, decoder_inputs], decoder_outputs, name="transformer"
    )
    return transformer


def build(out):
    import lib

    rng = lib.setup()
    n = 256
    start_id, end_id = 2, 3  # "[start]" and "[end]" are in every Spanish sentence: the most frequent tokens
    translate = rng.permutation(np.arange(4, vocab_size))  # a fixed word-by-word "dictionary"
    eng = np.zeros((n, sequence_length), dtype="int64")
    spa = np.zeros((n, sequence_length + 1), dtype="int64")
    for i in range(n):
        k = rng.integers(3, 15)
        words = rng.zipf(1.3, size=k) + 3  # 4 = most frequent word
        words[words >= vocab_size] = 1  # [UNK]
        eng[i, :k] = words
        spanish = np.where(words == 1, 1, translate[np.clip(words - 4, 0, None)])
        spa[i, : k + 2] = np.concatenate([[start_id], spanish, [end_id]])
    # format_dataset: inputs {"encoder_inputs": eng, "decoder_inputs": spa[:, :-1]}, targets spa[:, 1:]
    x = {"encoder_inputs": eng, "decoder_inputs": spa[:, :-1]}
    y = spa[:, 1:]
    transformer = make_model()
    transformer.compile(
        "rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    lib.fit_steps(transformer, x, y, steps=8, batch_size=batch_size)
    transformer.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x_encoder_inputs=x["encoder_inputs"], x_decoder_inputs=x["decoder_inputs"], y=y)
