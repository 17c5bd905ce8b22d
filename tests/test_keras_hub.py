"""KerasHub task models are library code (issue 21, point 7).

A user checking a KerasHub model has keras-hub installed and no code of their own: kerascheck loads
its classes itself, lists them as library classes in the header (never as the user's code, never as
a problem), and reads the task's own config without loading it. The model is KerasHub's
ResNetImageClassifier from its test's tiny config (keras_hub/src/models/resnet/
resnet_image_classifier_test.py), which shows a real KerasHub bug: with activation="softmax" the
default loss is built with from_logits=True, because ImageClassifier.compile() runs in the
constructor before the activation is set. bench/corpus/models/hub_* hold the other task families.
"""

import pytest

from helpers import json_report, kerascheck

keras_hub = pytest.importorskip("keras_hub")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 64],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=True, image_shape=(16, 16, 3))
    task = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=2, pooling="avg",
                                                  activation="softmax")
    rng = np.random.default_rng(0)
    task.fit(rng.random((32, 16, 16, 3)).astype("float32"), rng.integers(0, 2, 32), batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("hub") / "resnet.keras"
    task.save(path)
    return path


def test_a_keras_hub_task_loads_without_custom_objects_and_is_not_the_users_code(classifier):
    proc = kerascheck(str(classifier), "--format", "json", "--select", "unsafe-code,softmax-loss-mismatch,dead-units")
    model = json_report(proc.stdout)["models"][0]
    assert proc.returncode == 1 and not model["errors"], proc.stderr  # a finding, not "needs the custom class"
    assert model["notes"] == ["uses KerasHub classes (keras_hub " + keras_hub.__version__ + " is installed; library "
                              "code, not yours): ResNetBackbone, ResNetImageClassifier"]
    assert not [f for f in model["findings"] if f["rule"] == "unsafe-code"]
    assert "dead-units" not in {s["rule"] for s in model["skipped"]}  # the model tier ran
    (mismatch,) = [f for f in model["findings"] if f["rule"] == "softmax-loss-mismatch"]
    assert mismatch["severity"] == "error" and "from_logits=True" in mismatch["message"]


def test_the_tasks_own_config_is_read_statically(classifier):
    proc = kerascheck(str(classifier), "--static", "--format", "json", "--select", "softmax-loss-mismatch")
    (finding,) = json_report(proc.stdout)["models"][0]["findings"]
    assert "its config says activation='softmax' for 2 classes" in finding["message"]
    assert "Build the task with activation=None" in finding["fix"]


def test_a_bert_savedmodel_export_runs_on_ids_its_tables_take(tmp_path):
    """KerasHub's BertTextClassifier (keras_hub/src/models/bert/bert_text_classifier_test.py's tiny config,
    max_sequence_length 5) exported with Model.export: synthetic inputs must fit the signature, whose
    segment ids index a table of 2 rows and whose positions stop at 5, or batch-dependence cannot run."""
    import keras

    keras.utils.set_random_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "."]
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=5)
    task = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=2, preprocessor=None)
    task.export(str(tmp_path / "export"))
    proc = kerascheck(str(tmp_path / "export"), "--format", "json", "--select", "batch-dependence,nan-in-training")
    model = json_report(proc.stdout)["models"][0]
    assert proc.returncode == 0 and not model["errors"], proc.stderr
    skipped = {s["rule"]: s["reason"] for s in model["skipped"]}
    assert list(skipped) == ["nan-in-training"] and "SavedModel keeps no optimizer or loss" in skipped["nan-in-training"]
    assert model["probes"]["data"]["inputs"] == ["segment_ids: integers below 2 (the signature refused larger ones)",
                                                 "open dimensions of 5 (the signature refused 8)"]
