"""Text generation with a miniature GPT (keras-io examples/generative/text_generation_with_miniature_gpt.py), a causal-masked Transformer block, two outputs with loss [SparseCategoricalCrossentropy(from_logits=True), None].

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/generative/text_generation_with_miniature_gpt.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Apoorv Nandan).

Kept as written: causal_attention_mask, TransformerBlock (MultiHeadAttention(num_heads,
embed_dim) with a causal mask, dropout 0.1, post-LayerNorm), TokenAndPositionEmbedding,
create_model (int32 `Input(shape=(80,))`, outputs [Dense(vocab_size) logits, the block's
output], `compile("adam", loss=[SparseCategoricalCrossentropy(from_logits=True), None])`),
custom_standardization, maxlen=80, num_heads=2, batch_size=128, the language-model data
format of prepare_lm_inputs_labels (x = ids[:, :-1], y = ids[:, 1:], 0 = padding).
Changed (shrunk for CPU):
- vocab_size 20000 -> 2000, embed_dim 256 -> 64, feed_forward_dim 256 -> 64;
- the IMDB text -> 256 synthetic lines in the form TextVectorization(max_tokens=vocab_size - 1,
  output_sequence_length=81) gives (ids 2..1998 Zipf-distributed, 1 = OOV, about 1 line in 8
  shorter than 81 tokens and padded with 0 at the end; a next-word structure: with
  probability 0.4 a word is a fixed function of the one before, so there is something to learn),
  split by the example's prepare_lm_inputs_labels;
- `fit(text_ds, verbose=2, epochs=25, callbacks=[text_gen_callback])` -> 8 steps of 32 with no
  callback (TextGenerator only prints samples);
- the example as written cannot be built on Keras 3.15: calling its TransformerBlock on a
  `keras.Input` raises "OperatorNotAllowedInGraphError: Exception encountered when calling
  TransformerBlock.call(). Could not automatically infer the output shape / dtype of
  'transformer_block' (of type TransformerBlock) ... Iterating over a symbolic `tf.Tensor` is
  not allowed" (causal_attention_mask calls `ops.tile(mask, mult)` with `mult` a tensor, and
  Keras 3.15's TensorFlow `ops.tile` iterates over its `repeats`). The model uses
  TransformerBlockK315: the example's TransformerBlock whose call is the example's, word for
  word, except that it builds the same (batch, n_dest, n_src) mask with
  causal_attention_mask_k315 (`ops.broadcast_to` instead of `ops.tile`); create_model is the
  example's with that class;
- the example does not save. As written, the model saves but cannot be reloaded:
  `keras.models.load_model` raises "TypeError: TokenAndPositionEmbedding.__init__() got an
  unexpected keyword argument 'trainable'" (the auto-generated config holds `trainable` and
  `dtype`, which the example's __init__ methods, without **kwargs, do not take; TransformerBlock
  has the same problem). That model, trained 8 steps, is saved as `as_written.keras`. The same
  model built from SavableTokenAndPositionEmbedding and SavableTransformerBlockK315 (the classes
  above plus a from_config that drops `trainable` and `dtype`, nothing else), trained the same
  way from the same seed, is saved as `model.keras`;
- data.npz holds x and y_<the logits output> (the second output has no loss and no labels, as
  in the example).
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import keras
from keras import layers
from keras import ops
import numpy as np
import string
import tensorflow.strings as tf_strings


def causal_attention_mask(batch_size, n_dest, n_src, dtype):
    """
    Mask the upper half of the dot product matrix in self attention.
    This prevents flow of information from future tokens to current token.
    1's in the lower triangle, counting from the lower right corner.
    """
    i = ops.arange(n_dest)[:, None]
    j = ops.arange(n_src)
    m = i >= j - n_src + n_dest
    mask = ops.cast(m, dtype)
    mask = ops.reshape(mask, [1, n_dest, n_src])
    mult = ops.concatenate(
        [ops.expand_dims(batch_size, -1), ops.convert_to_tensor([1, 1])], 0
    )
    return ops.tile(mask, mult)


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads, embed_dim)
        self.ffn = keras.Sequential(
            [
                layers.Dense(ff_dim, activation="relu"),
                layers.Dense(embed_dim),
            ]
        )
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs):
        input_shape = ops.shape(inputs)
        batch_size = input_shape[0]
        seq_len = input_shape[1]
        causal_mask = causal_attention_mask(batch_size, seq_len, seq_len, "bool")
        attention_output = self.att(inputs, inputs, attention_mask=causal_mask)
        attention_output = self.dropout1(attention_output)
        out1 = self.layernorm1(inputs + attention_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        maxlen = ops.shape(x)[-1]
        positions = ops.arange(0, maxlen, 1)
        positions = self.pos_emb(positions)
        x = self.token_emb(x)
        return x + positions


def custom_standardization(input_string):
    """Remove html line-break tags and handle punctuation"""
    lowercased = tf_strings.lower(input_string)
    stripped_html = tf_strings.regex_replace(lowercased, "<br />", " ")
    return tf_strings.regex_replace(stripped_html, f"([{string.punctuation}])", r" \1")


vocab_size = 2000  # upstream 20000
maxlen = 80  # Max sequence size
embed_dim = 64  # upstream 256
num_heads = 2  # Number of attention heads
feed_forward_dim = 64  # upstream 256
batch_size = 128


def causal_attention_mask_k315(batch_size, n_dest, n_src, dtype):
    """causal_attention_mask with ops.broadcast_to in place of ops.tile (not in the example)."""
    i = ops.arange(n_dest)[:, None]
    j = ops.arange(n_src)
    m = i >= j - n_src + n_dest
    mask = ops.cast(m, dtype)
    mask = ops.reshape(mask, [1, n_dest, n_src])
    return ops.broadcast_to(mask, (batch_size, n_dest, n_src))


class TransformerBlockK315(TransformerBlock):
    """The example's TransformerBlock, its call using causal_attention_mask_k315 (not in the example)."""

    def call(self, inputs):
        input_shape = ops.shape(inputs)
        batch_size = input_shape[0]
        seq_len = input_shape[1]
        causal_mask = causal_attention_mask_k315(batch_size, seq_len, seq_len, "bool")
        attention_output = self.att(inputs, inputs, attention_mask=causal_mask)
        attention_output = self.dropout1(attention_output)
        out1 = self.layernorm1(inputs + attention_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output)
        return self.layernorm2(out1 + ffn_output)


def create_model():
    inputs = layers.Input(shape=(maxlen,), dtype="int32")
    embedding_layer = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)
    x = embedding_layer(inputs)
    transformer_block = TransformerBlockK315(embed_dim, num_heads, feed_forward_dim)
    x = transformer_block(x)
    outputs = layers.Dense(vocab_size)(x)
    model = keras.Model(inputs=inputs, outputs=[outputs, x])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        "adam",
        loss=[loss_fn, None],
    )  # No loss and optimization based on word embeddings from transformer block
    return model


def _from_config_without_base_keys(cls, config):
    """What Keras needs to rebuild a layer whose __init__ takes no **kwargs (not in the example)."""
    config = {k: v for k, v in config.items() if k not in ("trainable", "dtype")}
    return cls(**config)


class SavableTokenAndPositionEmbedding(TokenAndPositionEmbedding):
    """The example's TokenAndPositionEmbedding plus a from_config Keras can reload it with."""

    from_config = classmethod(_from_config_without_base_keys)


class SavableTransformerBlockK315(TransformerBlockK315):
    """TransformerBlockK315 plus a from_config Keras can reload it with."""

    from_config = classmethod(_from_config_without_base_keys)


def create_savable_model():
    """create_model with the Savable classes (not in the example)."""
    inputs = layers.Input(shape=(maxlen,), dtype="int32")
    embedding_layer = SavableTokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)
    x = embedding_layer(inputs)
    transformer_block = SavableTransformerBlockK315(embed_dim, num_heads, feed_forward_dim)
    x = transformer_block(x)
    outputs = layers.Dense(vocab_size)(x)
    model = keras.Model(inputs=inputs, outputs=[outputs, x])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        "adam",
        loss=[loss_fn, None],
    )  # No loss and optimization based on word embeddings from transformer block
    return model


def build(out):
    import lib

    rng = lib.setup()
    n = 256
    # What vectorize_layer makes of IMDB lines: 81 ids, 0-padded at the end when shorter.
    follow = rng.integers(2, vocab_size - 1, size=vocab_size)  # the word that often comes next
    tokens = np.zeros((n, maxlen + 1), dtype="int64")
    for i in range(n):
        k = maxlen + 1 if rng.uniform() > 0.125 else int(rng.integers(10, maxlen + 1))
        words = np.minimum(rng.zipf(1.2, size=k) + 1, vocab_size - 1)
        words[words == vocab_size - 1] = 1  # beyond max_tokens: OOV
        for t in range(1, k):
            if rng.uniform() < 0.4:
                words[t] = follow[words[t - 1]]
        tokens[i, :k] = words
    # prepare_lm_inputs_labels
    x = tokens[:, :-1]
    y = tokens[:, 1:]
    model = create_model()
    lib.fit_steps(model, x, y, steps=8, batch_size=32)
    model.save(os.path.join(out, "as_written.keras"))  # saves, but does not load
    keras.backend.clear_session()  # the same layer names in both files
    lib.setup()
    model = create_savable_model()
    lib.fit_steps(model, x, y, steps=8, batch_size=32)
    model.save(os.path.join(out, "model.keras"))
    logits_name = model.output_names[0] if hasattr(model, "output_names") else "dense"
    lib.save_data(out, x=x, **{"y_" + logits_name: y})
