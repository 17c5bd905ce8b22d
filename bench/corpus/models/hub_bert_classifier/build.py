"""BERT text classifier (KerasHub keras_hub/src/models/bert/bert_text_classifier_test.py), a KerasHub task with its preprocessor, also exported as a SavedModel.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/bert/bert_text_classifier_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: the 10-word vocabulary, `BertTokenizer`,
`BertTextClassifierPreprocessor(sequence_length=5)`, `BertBackbone(num_layers=2,
num_heads=2, max_sequence_length=5)`, `BertTextClassifier(num_classes=2)` (activation None,
dropout 0.1) and KerasHub's default compile, which the task runs in its constructor
(`TextClassifier.compile()`: Adam(5e-5), SparseCategoricalCrossentropy(from_logits=True),
SparseCategoricalAccuracy); training on raw strings through the preprocessor, as the test's
`task.fit(x, y)` on `train_data` does.
Changed:
- hidden_dim 2 -> 16 and intermediate_dim 4 -> 32: the test's hidden_dim 2 with 2 heads gives
  1-wide heads and a LayerNorm over 2 features (every vector normalises to +-1), which is
  degenerate for training;
- train_data (2 sentences) -> 256 synthetic sentences of the test's words plus unknown ones
  ("slow", "lazy", "dog", "jumps"), label 1 when "quick" is among the first three words
  (what sequence_length 5 leaves visible: [CLS] w1 w2 w3 [SEP]); `fit` -> 8 steps of 32;
- saved with `task.save(out/model.keras)` and exported with `task.export(out/export)`
  (Keras's `Model.export`, a TensorFlow SavedModel; the test does neither);
- data.npz holds what the saved model's inputs take, the preprocessor's output for those
  sentences (x_token_ids, x_segment_ids, x_padding_mask as the preprocessor gives them,
  the mask boolean), and y the integer labels, as SparseCategoricalCrossentropy takes them.
"""
import os

import numpy as np
import keras
import keras_hub

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["the", "quick", "brown", "fox", "."]
WORDS = ["the", "quick", "brown", "fox", "slow", "lazy", "dog", "jumps"]


def make_task():
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=VOCAB),
        sequence_length=5,
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,  # test: 2
        intermediate_dim=32,  # test: 4
        max_sequence_length=preprocessor.sequence_length,
    )
    return keras_hub.models.BertTextClassifier(preprocessor=preprocessor, backbone=backbone, num_classes=2)


def sentences(rng, n):
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(3, 7))))
        texts.append(" ".join(words) + ".")
        labels.append(int("quick" in words[:3]))
    return texts, np.array(labels, dtype="int32")


def build(out):
    import lib

    rng = lib.setup()
    texts, labels = sentences(rng, 256)
    task = make_task()
    # An array, not a list: lib.fit_steps reads a list as several inputs and would train 10x longer.
    lib.fit_steps(task, np.array(texts), labels, steps=8, batch_size=32)
    task.save(os.path.join(out, "model.keras"))
    task.export(os.path.join(out, "export"))
    x, y = task.preprocessor(texts, labels)
    lib.save_data(out, **{"x_" + k: np.asarray(v) for k, v in x.items()}, y=np.asarray(y))
