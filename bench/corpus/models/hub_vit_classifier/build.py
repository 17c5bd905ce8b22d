"""ViT image classifier (KerasHub keras_hub/src/models/vit/vit_image_classifier_test.py), a KerasHub vision transformer task whose preprocessor rescales 0..255 pixels.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/vit/vit_image_classifier_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: `ViTBackbone(image_shape=(28, 28, 3), patch_size=(4, 4),
num_layers=3, num_heads=6, hidden_dim=48, mlp_dim=48 * 4)`, `ViTImageConverter(image_size=(28, 28),
scale=1 / 255.0)` in a `ViTImageClassifierPreprocessor`, `ViTImageClassifier(num_classes=2)`
(activation None) and KerasHub's default compile, which the task runs in its constructor
(`ImageClassifier.compile()`: Adam(5e-5), SparseCategoricalCrossentropy(from_logits=True),
SparseCategoricalAccuracy); training on raw pixels through the preprocessor, as the test's
`task.fit(images, labels)` does.
Changed:
- the test's images (`np.ones((2, 28, 28, 3))`, labels [0, 1]) -> 256 synthetic 28x28x3 images
  in 0..255 (the converter's scale=1/255 says raw pixels) with a class-dependent brightness band,
  labels 0/1; `fit` -> 8 steps of 32;
- saved with `task.save(out/model.keras)`;
- data.npz holds what the saved model's input takes, the preprocessor's output for those images
  (x: pixels scaled to [0, 1] by the converter), and y the integer labels.
"""
import os

import numpy as np
import keras
import keras_hub


def make_task():
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(28, 28, 3),
        patch_size=(4, 4),
        num_layers=3,
        num_heads=6,
        hidden_dim=48,
        mlp_dim=48 * 4,
    )
    image_converter = keras_hub.layers.ViTImageConverter(image_size=(28, 28), scale=1 / 255.0)
    preprocessor = keras_hub.models.ViTImageClassifierPreprocessor(image_converter=image_converter)
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=2, preprocessor=preprocessor)


def build(out):
    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 256, (28, 28, 3), 2, 0.0, 255.0)
    task = make_task()
    lib.fit_steps(task, images, labels, steps=8, batch_size=32)
    task.save(os.path.join(out, "model.keras"))
    x = task.preprocessor(images)
    lib.save_data(out, x=np.asarray(x), y=labels)
