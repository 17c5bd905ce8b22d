"""BART seq2seq LM (KerasHub keras_hub/src/models/bart/bart_seq_2_seq_lm_test.py), a KerasHub encoder-decoder task with four inputs and a 3-D logits output.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/bart/bart_seq_2_seq_lm_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: its BPE merges and the vocabulary built from them with
<s>, <pad>, </s>, <mask>, `BartTokenizer`, `BartSeq2SeqLMPreprocessor(encoder_sequence_length=12,
decoder_sequence_length=10)`, `BartBackbone(num_layers=2, num_heads=2, max_sequence_length=12)`,
`BartSeq2SeqLM(preprocessor, backbone)` and KerasHub's default compile, which the task runs in
its constructor (`CausalLM.compile()`: Adam(2e-5), SparseCategoricalCrossentropy(from_logits=True),
weighted SparseCategoricalAccuracy); training on raw {"encoder_text", "decoder_text"} strings
through the preprocessor, as the test's `task.fit(x)` on `train_data` does.
Changed:
- hidden_dim 4 -> 16 and intermediate_dim 8 -> 32: the test's 2 heads of width 2 and a
  LayerNorm over 4 features are degenerate for training;
- train_data (" airplane at airport" -> " airplane airport", twice) -> 256 synthetic pairs:
  encoder text of 2 to 5 words spelled with the test's merges, decoder text the same words
  without " at" and " the" (the test's pair drops " at" the same way); `fit` -> 8 steps of 32;
- saved with `task.save(out/model.keras)`;
- data.npz holds what the saved model's inputs take, the preprocessor's x for those pairs
  (x_encoder_token_ids, x_encoder_padding_mask, x_decoder_token_ids, x_decoder_padding_mask,
  the masks boolean as the preprocessor gives them) and y its labels (decoder ids shifted
  left); its sample weights cannot go in: --data takes x and y only.
"""
import os

import numpy as np
import keras
import keras_hub

MERGES = ["Ġ a", "Ġ t", "Ġ i", "Ġ b", "a i", "p l", "n e"]
MERGES += ["Ġa t", "p o", "r t", "Ġt h", "ai r", "pl a", "po rt"]
MERGES += ["Ġai r", "Ġa i", "pla ne"]
WORDS = [" airplane", " at", " airport", " air", " plane", " port", " a", " bit", " the", " tab"]


def make_vocab():
    vocab = []
    for merge in MERGES:
        a, b = merge.split(" ")
        vocab.extend([a, b, a + b])
    vocab += ["<s>", "<pad>", "</s>", "<mask>"]
    vocab = sorted(set(vocab))  # Remove duplicates
    return dict([(token, i) for i, token in enumerate(vocab)])


def make_task():
    preprocessor = keras_hub.models.BartSeq2SeqLMPreprocessor(
        keras_hub.models.BartTokenizer(vocabulary=make_vocab(), merges=MERGES),
        encoder_sequence_length=12,
        decoder_sequence_length=10,
    )
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,  # test: 4
        intermediate_dim=32,  # test: 8
        max_sequence_length=12,
    )
    return keras_hub.models.BartSeq2SeqLM(preprocessor=preprocessor, backbone=backbone)


def pairs(rng, n):
    encoder, decoder = [], []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        encoder.append("".join(words))
        decoder.append("".join(w for w in words if w not in (" at", " the")) or " air")
    return {"encoder_text": encoder, "decoder_text": decoder}


def build(out):
    import lib

    rng = lib.setup()
    texts = pairs(rng, 256)
    task = make_task()
    lib.fit_steps(task, texts, steps=8, batch_size=32)
    task.save(os.path.join(out, "model.keras"))
    x, y, _ = task.preprocessor(texts)
    lib.save_data(out, **{"x_" + k: np.asarray(v) for k, v in x.items()}, y=np.asarray(y))
