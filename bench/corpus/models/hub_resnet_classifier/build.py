"""ResNet image classifier (KerasHub keras_hub/src/models/resnet/resnet_image_classifier_test.py), a KerasHub pre-activation ResNet task with a softmax head and no preprocessor.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/resnet/resnet_image_classifier_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: `ResNetBackbone(input_conv_filters=[64],
input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 64, 64], stackwise_num_blocks=[2, 2, 2],
stackwise_num_strides=[1, 2, 2], block_type="basic_block", use_pre_activation=True,
image_shape=(16, 16, 3))`, `ResNetImageClassifier(num_classes=2, pooling="avg",
activation="softmax")` with no preprocessor (the test passes none), and KerasHub's default
compile, which the task runs in its constructor (`ImageClassifier.compile()`: Adam(5e-5),
SparseCategoricalCrossentropy(from_logits=False) because the activation is softmax,
SparseCategoricalAccuracy); fit on (images, integer labels) as the test's train_data.
Changed:
- the test's images (`ops.ones((2, 16, 16, 3))`) and labels ([0, 3], 3 being out of range for
  num_classes=2; the test that fits them is skipped upstream) -> 256 synthetic 16x16x3 images
  in [0, 1] (the range the test's images and its preset test's `image / 255.0` have; with no
  preprocessor the backbone takes them as they are) with a class-dependent brightness band,
  and labels 0/1; `fit` -> 8 steps of 32;
- saved with `task.save(out/model.keras)`; data.npz holds x (the images) and y (integer labels).
"""
import os

import numpy as np
import keras
import keras_hub


def make_task():
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 64, 64],
        stackwise_num_blocks=[2, 2, 2],
        stackwise_num_strides=[1, 2, 2],
        block_type="basic_block",
        use_pre_activation=True,
        image_shape=(16, 16, 3),
    )
    return keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=2, pooling="avg", activation="softmax"
    )


def build(out):
    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 256, (16, 16, 3), 2, 0.0, 1.0)
    task = make_task()
    lib.fit_steps(task, images, labels, steps=8, batch_size=32)
    task.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=images, y=labels)
