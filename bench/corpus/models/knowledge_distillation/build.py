"""Knowledge Distillation (keras-io examples/vision/knowledge_distillation.py), a Distiller subclass with its own compile() and compute_loss() that distils a teacher into a student.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/knowledge_distillation.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Kenneth Borup,
converted to Keras 3 by Md Awsafur Rahman).

Kept as written: the Distiller class (compile(optimizer, metrics, student_loss_fn,
distillation_loss_fn, alpha, temperature), compute_loss with the teacher in inference mode and
the temperature-softened KL term, call() = the student); the teacher and student Sequentials at
their full widths (as written the teacher is not frozen: Distiller.trainable_weights holds its
weights and the KL term is differentiable in its logits, so distiller.fit updates it too);
the teacher's compile (Adam(), SparseCategoricalCrossentropy(from_logits=True));
`distiller.compile(optimizer=Adam(), metrics=[SparseCategoricalAccuracy()],
student_loss_fn=SparseCategoricalCrossentropy(from_logits=True), distillation_loss_fn=KLDivergence(),
alpha=0.1, temperature=10)`; MNIST-shaped data as the example feeds it: float32 pixels / 255 in
[0, 1] shaped (n, 28, 28, 1), uint8 labels (n,).
Changed:
- MNIST -> 256 synthetic digits with a visible class signal;
- `teacher.fit(epochs=5)` and `distiller.fit(epochs=3)` -> 8 steps of 32 each; student_scratch
  (the from-scratch baseline) is not built;
- the example does not save. The Distiller as written cannot be saved: Keras's get_config
  raises NotImplementedError ("Object Distiller was created by passing non-serializable argument
  values in `__init__()` ... Please implement `get_config()`"), so no as-written file can exist.
  The saved class, SavableDistiller, is the example's Distiller plus the get_config/from_config
  Keras asks for, nothing else; saved as `model.keras`. Its custom compile() is not in the file
  (Keras stores only what reaches super().compile: the optimizer and metrics), as for any
  user of the example who saves it.
"""
import os

import keras
from keras import layers
from keras import ops
import numpy as np


class Distiller(keras.Model):
    def __init__(self, student, teacher):
        super().__init__()
        self.teacher = teacher
        self.student = student

    def compile(
        self,
        optimizer,
        metrics,
        student_loss_fn,
        distillation_loss_fn,
        alpha=0.1,
        temperature=3,
    ):
        """Configure the distiller.

        Args:
            optimizer: Keras optimizer for the student weights
            metrics: Keras metrics for evaluation
            student_loss_fn: Loss function of difference between student
                predictions and ground-truth
            distillation_loss_fn: Loss function of difference between soft
                student predictions and soft teacher predictions
            alpha: weight to student_loss_fn and 1-alpha to distillation_loss_fn
            temperature: Temperature for softening probability distributions.
                Larger temperature gives softer distributions.
        """
        super().compile(optimizer=optimizer, metrics=metrics)
        self.student_loss_fn = student_loss_fn
        self.distillation_loss_fn = distillation_loss_fn
        self.alpha = alpha
        self.temperature = temperature

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False
    ):
        teacher_pred = self.teacher(x, training=False)
        student_loss = self.student_loss_fn(y, y_pred)

        distillation_loss = self.distillation_loss_fn(
            ops.softmax(teacher_pred / self.temperature, axis=1),
            ops.softmax(y_pred / self.temperature, axis=1),
        ) * (self.temperature**2)

        loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss
        return loss

    def call(self, x):
        return self.student(x)


class SavableDistiller(Distiller):
    """The example's Distiller plus the two methods Keras needs to rebuild it from a file (not in the example)."""

    def get_config(self):
        return {"student": keras.saving.serialize_keras_object(self.student),
                "teacher": keras.saving.serialize_keras_object(self.teacher)}

    @classmethod
    def from_config(cls, config):
        return cls(student=keras.saving.deserialize_keras_object(config["student"]),
                   teacher=keras.saving.deserialize_keras_object(config["teacher"]))


def make_teacher():
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(256, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1), padding="same"),
            layers.Conv2D(512, (3, 3), strides=(2, 2), padding="same"),
            layers.Flatten(),
            layers.Dense(10),
        ],
        name="teacher",
    )


def make_student():
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(16, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1), padding="same"),
            layers.Conv2D(32, (3, 3), strides=(2, 2), padding="same"),
            layers.Flatten(),
            layers.Dense(10),
        ],
        name="student",
    )


def build(out):
    import lib

    rng = lib.setup()
    x_train, y_train = lib.class_images(rng, 256, (28, 28, 1), 10, 0.0, 1.0)
    y_train = y_train.astype("uint8")

    teacher = make_teacher()
    student = make_student()
    teacher.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    lib.fit_steps(teacher, x_train, y_train, steps=8, batch_size=32)

    distiller = SavableDistiller(student=student, teacher=teacher)
    distiller.compile(
        optimizer=keras.optimizers.Adam(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
        student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        distillation_loss_fn=keras.losses.KLDivergence(),
        alpha=0.1,
        temperature=10,
    )
    lib.fit_steps(distiller, x_train, y_train, steps=8, batch_size=32)
    distiller.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
