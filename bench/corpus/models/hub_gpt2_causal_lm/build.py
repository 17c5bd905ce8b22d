"""GPT-2 causal LM (KerasHub keras_hub/src/models/gpt2/gpt2_causal_lm_test.py), a KerasHub generative task with a BPE preprocessor and a 3-D logits output.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/gpt2/gpt2_causal_lm_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: its BPE merges and the vocabulary built from them,
`GPT2Tokenizer`, `GPT2CausalLMPreprocessor(sequence_length=8)`, `GPT2Backbone(num_layers=2,
num_heads=2, max_sequence_length=8)`, `GPT2CausalLM(preprocessor, backbone)` and KerasHub's
default compile, which the task runs in its constructor (`CausalLM.compile()`: Adam(2e-5),
SparseCategoricalCrossentropy(from_logits=True), weighted SparseCategoricalAccuracy);
training on raw strings through the preprocessor, as the test's `task.fit(x)` on
`train_data` does (the preprocessor makes the shifted labels and the padding sample weights).
Changed:
- hidden_dim 4 -> 16 and intermediate_dim 8 -> 32: the test's 2 heads of width 2 and a
  LayerNorm over 4 features are degenerate for training;
- train_data (" airplane at airport" twice) -> 256 synthetic strings of 2 to 5 words spelled
  with the test's merges (" airplane", " at", " airport", " air", " plane", " port", " a",
  " bit", " the", " tab", "!"); `fit` -> 8 steps of 32;
- saved with `task.save(out/model.keras)` (the test saves in its own saving test);
- data.npz holds what the saved model's inputs take, the preprocessor's x for those strings
  (x_token_ids, x_padding_mask, the mask boolean as the preprocessor gives it) and y its
  labels (the token ids shifted left, as SparseCategoricalCrossentropy takes them); the
  preprocessor's sample weights (the shifted padding mask) cannot go in: --data takes x and y only.
"""
import os

import numpy as np
import keras
import keras_hub

MERGES = ["Ġ a", "Ġ t", "Ġ i", "Ġ b", "a i", "p l", "n e"]
MERGES += ["Ġa t", "p o", "r t", "Ġt h", "ai r", "pl a", "po rt"]
MERGES += ["Ġai r", "Ġa i", "pla ne"]
WORDS = [" airplane", " at", " airport", " air", " plane", " port", " a", " bit", " the", " tab", "!"]


def make_vocab():
    vocab = []
    for merge in MERGES:
        a, b = merge.split(" ")
        vocab.extend([a, b, a + b])
    vocab += ["!", "<|endoftext|>"]
    vocab = sorted(set(vocab))  # Remove duplicates
    return dict([(token, i) for i, token in enumerate(vocab)])


def make_task():
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(
        keras_hub.models.GPT2Tokenizer(vocabulary=make_vocab(), merges=MERGES),
        sequence_length=8,
    )
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,  # test: 4
        intermediate_dim=32,  # test: 8
        max_sequence_length=preprocessor.sequence_length,
    )
    return keras_hub.models.GPT2CausalLM(preprocessor=preprocessor, backbone=backbone)


def build(out):
    import lib

    rng = lib.setup()
    texts = ["".join(rng.choice(WORDS, size=int(rng.integers(2, 6)))) for _ in range(256)]
    task = make_task()
    # An array, not a list: lib.fit_steps reads a list as several inputs and would train 10x longer.
    lib.fit_steps(task, np.array(texts), steps=8, batch_size=32)
    task.save(os.path.join(out, "model.keras"))
    x, y, _ = task.preprocessor(texts)
    lib.save_data(out, **{"x_" + k: np.asarray(v) for k, v in x.items()}, y=np.asarray(y))
