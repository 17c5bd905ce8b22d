"""BERT masked LM (KerasHub keras_hub/src/models/bert/bert_masked_lm_test.py), a KerasHub pretraining task: four inputs (one of them mask positions), a tied-embedding LM head gathering masked positions.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/bert/bert_masked_lm_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: the 10-word vocabulary, `BertTokenizer`,
`BertMaskedLMPreprocessor(mask_selection_length=5)`, `BertBackbone(num_layers=2, num_heads=2)`,
`BertMaskedLM(preprocessor, backbone)` and KerasHub's default compile, which the task runs in its
constructor (`MaskedLM.compile()`: Adam(5e-5), SparseCategoricalCrossentropy(from_logits=True),
weighted SparseCategoricalAccuracy); training on raw strings through the preprocessor, which
masks them anew each batch, as the test's `task.fit(x)` on `train_data` does.
Changed:
- hidden_dim 2 -> 16 and intermediate_dim 4 -> 32: the test's hidden_dim 2 with 2 heads gives
  1-wide heads and a LayerNorm over 2 features, which is degenerate for training;
- the test "simplif[ies] testing by masking every available token" (mask_selection_rate=1.0,
  mask_token_rate=1.0, random_token_rate=0.0): every input is then [CLS] [MASK]... [SEP], so
  nothing about the masked words can be learnt; here mask_selection_rate=0.4 and KerasHub's
  default mask_token_rate=0.8, random_token_rate=0.1 (0.4 rather than the default 0.15 so that
  these 5-word sentences get about 2 masks each);
- sequence_length 5 -> 8 (and max_sequence_length with it), so that a whole sentence
  ([CLS] + 5 words + [SEP]) fits;
- train_data (2 sentences) -> 256 synthetic sentences "the <quick|slow|lazy> <brown|red>
  <fox|dog>." (the test's words plus unknown ones, as its "the slow brown fox."); `fit` -> 8
  steps of 32;
- saved with `task.save(out/model.keras)`;
- data.npz holds what the saved model's inputs take, one masking of those sentences by the
  preprocessor (x_token_ids, x_segment_ids, x_padding_mask (boolean, as the preprocessor gives
  it), x_mask_positions), and y the masked ids (mask_ids); the preprocessor's sample weights
  (mask_weights, 0 on padded mask slots) cannot go in: --data takes x and y only.
"""
import os

import numpy as np
import keras
import keras_hub

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["the", "quick", "brown", "fox", "."]


def make_task():
    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=VOCAB),
        mask_selection_rate=0.4,  # test: 1.0
        mask_token_rate=0.8,  # test: 1.0
        random_token_rate=0.1,  # test: 0.0
        mask_selection_length=5,
        sequence_length=8,  # test: 5
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,  # test: 2
        intermediate_dim=32,  # test: 4
        max_sequence_length=preprocessor.sequence_length,
    )
    return keras_hub.models.BertMaskedLM(preprocessor=preprocessor, backbone=backbone)


def sentences(rng, n):
    return [
        f"the {rng.choice(['quick', 'slow', 'lazy'])} {rng.choice(['brown', 'red'])} {rng.choice(['fox', 'dog'])}."
        for _ in range(n)
    ]


def build(out):
    import lib

    rng = lib.setup()
    texts = sentences(rng, 256)
    task = make_task()
    # An array, not a list: lib.fit_steps reads a list as several inputs and would train 10x longer.
    lib.fit_steps(task, np.array(texts), steps=8, batch_size=32)
    task.save(os.path.join(out, "model.keras"))
    x, y, _ = task.preprocessor(texts)
    lib.save_data(out, **{"x_" + k: np.asarray(v) for k, v in x.items()}, y=np.asarray(y))
