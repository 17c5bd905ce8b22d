"""Gemma causal LM (KerasHub keras_hub/src/models/gemma/gemma_causal_lm_test.py), a Gemma-2-like KerasHub task: sliding-window attention, logit soft caps, RMS norms, tied embeddings.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/gemma/gemma_causal_lm_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: `GemmaTokenizer` over the test's SentencePiece vocabulary,
`GemmaCausalLMPreprocessor(sequence_length=8)`, the "Gemma 2 like" `GemmaBackbone` (num_layers=2,
num_query_heads=4, num_key_value_heads=2, sliding_window_size=3,
use_sliding_window_attention=True, attention_logit_soft_cap=50, final_logit_soft_cap=30,
query_head_dim_normalize=False, use_post_ffw_norm=True, use_post_attention_norm=True),
`GemmaCausalLM(preprocessor, backbone)` and KerasHub's default compile, which the task runs in
its constructor (`CausalLM.compile()`: Adam(2e-5), SparseCategoricalCrossentropy(from_logits=True),
weighted SparseCategoricalAccuracy); training on raw strings through the preprocessor, as the
test's `task.fit(x)` on `train_data` does.
Changed:
- the vocabulary file keras_hub/src/tests/test_data/gemma_test_vocab.spm is not installed with
  keras-hub, so build() trains it again exactly as KerasHub's
  tools/sentencepiece_testing/create_gemma_test_proto.py does (same two sentences, vocab_size
  11, model_type WORD, the same special ids and pieces) and passes the proto bytes; the saved
  model keeps the proto as an asset;
- hidden_dim 8 -> 16, intermediate_dim 16 -> 32, head_dim 2 -> 4: heads of width 2 are
  degenerate for training (num_query_heads * head_dim = hidden_dim kept);
- train_data ("the quick brown fox" twice) -> 256 synthetic strings of 2 to 6 words of that
  vocabulary ("the quick brown fox", "the earth is round"); `fit` -> 8 steps of 32;
- saved with `task.save(out/model.keras)`;
- data.npz holds what the saved model's inputs take, the preprocessor's x for those strings
  (x_token_ids, x_padding_mask, the mask boolean as the preprocessor gives it) and y its labels
  (the token ids shifted left); its sample weights cannot go in: --data takes x and y only.
"""
import io
import os

import numpy as np
import keras
import keras_hub

WORDS = ["the", "quick", "brown", "fox", "earth", "is", "round"]


def gemma_test_proto():
    """tools/sentencepiece_testing/create_gemma_test_proto.py, the first vocabulary, as bytes."""
    import sentencepiece

    bytes_io = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(["the quick brown fox", "the earth is round"]),
        model_writer=bytes_io,
        vocab_size=11,
        model_type="WORD",
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        bos_piece="<bos>",
        eos_piece="<eos>",
        unk_piece="<unk>",
    )
    return bytes_io.getvalue()


def make_task():
    tokenizer = keras_hub.models.GemmaTokenizer(proto=gemma_test_proto())
    preprocessor = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer, sequence_length=8)
    # Test Gemma 2 like config, as it's the more complicated case.
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=2,
        num_query_heads=4,
        num_key_value_heads=2,
        hidden_dim=16,  # test: 8
        intermediate_dim=32,  # test: 16
        head_dim=4,  # test: 2
        sliding_window_size=3,
        use_sliding_window_attention=True,
        attention_logit_soft_cap=50,
        final_logit_soft_cap=30,
        query_head_dim_normalize=False,
        use_post_ffw_norm=True,
        use_post_attention_norm=True,
    )
    return keras_hub.models.GemmaCausalLM(preprocessor=preprocessor, backbone=backbone)


def build(out):
    import lib

    rng = lib.setup()
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 7)))) for _ in range(256)]
    task = make_task()
    # An array, not a list: lib.fit_steps reads a list as several inputs and would train 10x longer.
    lib.fit_steps(task, np.array(texts), steps=8, batch_size=32)
    task.save(os.path.join(out, "model.keras"))
    x, y, _ = task.preprocessor(texts)
    lib.save_data(out, **{"x_" + k: np.asarray(v) for k, v in x.items()}, y=np.asarray(y))
