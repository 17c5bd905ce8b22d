"""Named Entity Recognition using Transformers (keras-io examples/nlp/ner_transformers.py), a keras.Model subclass with a custom non-padding token loss.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/nlp/ner_transformers.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Varun Singh).

Kept as written: TransformerBlock, TokenAndPositionEmbedding, NERModel (no get_config),
make_tag_lookup_table (10 tags, 0 = [PAD]), CustomNonPaddingTokenLoss (a per-token sparse
categorical crossentropy averaged over the tokens whose tag is > 0), vocab_size=20000,
batch_size=32, `NERModel(num_tags, vocab_size, embed_dim=32, num_heads=4, ff_dim=64)`,
`compile(optimizer="adam", loss=CustomNonPaddingTokenLoss())`.
Changed:
- the example's module-level code runs inside build();
- CoNLL 2003 (HuggingFace datasets) -> 256 synthetic sentences in the form the example's
  pipeline gives them: StringLookup ids (0 = OOV, which is also what padded_batch pads with;
  1..19998 words by frequency, Zipf-distributed), CoNLL-like lengths (2..40 tokens, mean ~14),
  tags 1..9 (tag id + 1; ~83% "O" = 1, entities B-/I-PER/ORG/LOC/MISC tied to word ids so
  they are learnable), padded with 0 at the end; padded_batch pads each batch to its longest
  sentence, here all 256 are padded to the longest of them (40);
- `fit(train_dataset, epochs=10)` -> 8 steps of 32;
- the example does not save, and as written it cannot: `ner_model.save()` raises Keras's
  NotImplementedError ("Object NERModel was created by passing non-serializable argument values
  in `__init__()`, and therefore the object must override `get_config()` in order to be
  serializable. Please implement `get_config()`."), so no as-written file can exist. The saved
  class, SavableNERModel, is the example's NERModel plus the get_config Keras asks for (its
  __init__ only records the arguments), nothing else;
- with NERModel made savable, the compiled loss still cannot be reloaded: `load_model` raises
  "TypeError: <class '...CustomNonPaddingTokenLoss'> could not be deserialized properly. ...
  Exception encountered: CustomNonPaddingTokenLoss.__init__() got an unexpected keyword argument
  'reduction'" (Loss.get_config returns name and reduction, the example's __init__ takes only
  name). The model trained with the example's loss is saved as `as_written.keras` (it fails to
  load that way), then compiled again, same optimizer and state, with
  SavableCustomNonPaddingTokenLoss (the example's loss plus a get_config returning only the
  name) and saved as `model.keras`.
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import keras
import numpy as np
import tensorflow as tf
from keras import layers

class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim
        )
        self.ffn = keras.Sequential(
            [
                keras.layers.Dense(ff_dim, activation="relu"),
                keras.layers.Dense(embed_dim),
            ]
        )
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = keras.layers.Embedding(
            input_dim=vocab_size, output_dim=embed_dim
        )
        self.pos_emb = keras.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, inputs):
        maxlen = tf.shape(inputs)[-1]
        positions = tf.range(start=0, limit=maxlen, delta=1)
        position_embeddings = self.pos_emb(positions)
        token_embeddings = self.token_emb(inputs)
        return token_embeddings + position_embeddings


class NERModel(keras.Model):
    def __init__(
        self, num_tags, vocab_size, maxlen=128, embed_dim=32, num_heads=2, ff_dim=32
    ):
        super().__init__()
        self.embedding_layer = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)
        self.transformer_block = TransformerBlock(embed_dim, num_heads, ff_dim)
        self.dropout1 = layers.Dropout(0.1)
        self.ff = layers.Dense(ff_dim, activation="relu")
        self.dropout2 = layers.Dropout(0.1)
        self.ff_final = layers.Dense(num_tags, activation="softmax")

    def call(self, inputs, training=False):
        x = self.embedding_layer(inputs)
        x = self.transformer_block(x)
        x = self.dropout1(x, training=training)
        x = self.ff(x)
        x = self.dropout2(x, training=training)
        x = self.ff_final(x)
        return x


def make_tag_lookup_table():
    iob_labels = ["B", "I"]
    ner_labels = ["PER", "ORG", "LOC", "MISC"]
    all_labels = [(label1, label2) for label2 in ner_labels for label1 in iob_labels]
    all_labels = ["-".join([a, b]) for a, b in all_labels]
    all_labels = ["[PAD]", "O"] + all_labels
    return dict(zip(range(0, len(all_labels) + 1), all_labels))


class CustomNonPaddingTokenLoss(keras.losses.Loss):
    def __init__(self, name="custom_ner_loss"):
        super().__init__(name=name)

    def call(self, y_true, y_pred):
        loss_fn = keras.losses.SparseCategoricalCrossentropy(
            from_logits=False, reduction=None
        )
        loss = loss_fn(y_true, y_pred)
        mask = tf.cast((y_true > 0), dtype=tf.float32)
        loss = loss * mask
        return tf.reduce_sum(loss) / tf.reduce_sum(mask)


class SavableNERModel(NERModel):
    """The example's NERModel plus the get_config that Keras needs to save it (not in the example)."""

    def __init__(
        self, num_tags, vocab_size, maxlen=128, embed_dim=32, num_heads=2, ff_dim=32
    ):
        super().__init__(num_tags, vocab_size, maxlen, embed_dim, num_heads, ff_dim)
        self.config_args = (num_tags, vocab_size, maxlen, embed_dim, num_heads, ff_dim)

    def get_config(self):
        names = ("num_tags", "vocab_size", "maxlen", "embed_dim", "num_heads", "ff_dim")
        return dict(zip(names, self.config_args))


class SavableCustomNonPaddingTokenLoss(CustomNonPaddingTokenLoss):
    """The example's loss with a get_config that its __init__ accepts back (not in the example)."""

    def get_config(self):
        return {"name": self.name}


def build(out):
    import lib

    rng = lib.setup()
    n = 256
    mapping = make_tag_lookup_table()
    num_tags = len(mapping)
    vocab_size = 20000
    batch_size = 32

    # Sentences as the example's pipeline makes them: lookup ids, tags + 1, padded with 0.
    lengths = np.clip(rng.gamma(2.0, 7.0, size=n).astype(int), 2, 40)
    maxlen = int(lengths.max())
    x = np.zeros((n, maxlen), dtype="int64")
    y = np.zeros((n, maxlen), dtype="int64")
    entity_of_word = rng.integers(2, num_tags, size=vocab_size)  # the tag a word has when it is an entity
    for i, k in enumerate(lengths):
        words = rng.zipf(1.3, size=k)
        words[words >= vocab_size - 1] = 0  # OOV
        tags = np.ones(k, dtype="int64")  # "O"
        entity = (words > 50) & (rng.uniform(size=k) < 0.5)  # rarer words are often names
        tags[entity] = entity_of_word[words[entity]]
        x[i, :k], y[i, :k] = words, tags

    ner_model = SavableNERModel(num_tags, vocab_size, embed_dim=32, num_heads=4, ff_dim=64)
    loss = CustomNonPaddingTokenLoss()
    ner_model.compile(optimizer="adam", loss=loss)
    lib.fit_steps(ner_model, x, y, steps=8, batch_size=batch_size)
    ner_model.save(os.path.join(out, "as_written.keras"))  # loads only with compile=False
    ner_model.compile(optimizer=ner_model.optimizer, loss=SavableCustomNonPaddingTokenLoss())
    ner_model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x, y=y)
