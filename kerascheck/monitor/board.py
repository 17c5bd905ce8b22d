"""The TensorBoard output of Monitor(log_dir=): per-layer gradient norms, update/weight ratios, dead and
saturated fractions and the losses as scalars, the weights as histograms."""
from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

TAG = re.compile(r"[^A-Za-z0-9_.\-/]")


class Board:
    """TensorBoard event files written with tf.summary.write, tagged for TensorBoard's scalar and histogram
    plugins (the `tensorboard` package, which tf.summary.scalar needs, is not required to write them)."""

    def __init__(self, log_dir: str):
        from tensorflow.core.framework import summary_pb2

        def meta(plugin):
            return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))

        self.writer = tf.summary.create_file_writer(log_dir)
        self.scalar_meta, self.histogram_meta = meta("scalars"), meta("histograms")

    # ------------------------------------------------------------------ what the monitor logs

    def measurement(self, step: int, loss: float, rate: float, run, layer_order: list, kernel_owners: list):
        """One measurement on the fixed batch: its loss, the learning rate, the gradient norms, the update ratios."""
        values = {"loss/fixed_batch": loss, "learning_rate": rate, "gradient_norm/global": run.global_norms[-1]}
        values.update({f"gradient_norm/{name}": run.layer_norms[name][-1] for name in layer_order})
        values.update({f"update_ratio/{name}": run.update_ratios[name][-1]
                       for name in dict.fromkeys(kernel_owners) if run.update_ratios.get(name)})
        self.scalars(step, values)

    def activations(self, step: int, activations: dict):
        """Each layer's dead (ReLU-like) or saturated (sigmoid-like) fraction on the fixed batch."""
        self.scalars(step, {
            f"{'dead_fraction' if 'dead_share' in st else 'saturated_fraction'}/{layer}":
                st.get("dead_share", st.get("saturated_share", 0.0)) for layer, st in activations.items()})

    def epoch(self, step: int, loss: float | None, val: float | None, trainable: list):
        """An epoch's loss and validation loss, and every trainable weight's histogram."""
        self.scalars(step, {k: v for k, v in (("loss/epoch", loss), ("loss/validation", val)) if v is not None})
        self.histograms(step, {f"weights/{v.path}": v.numpy() for v in trainable})
        self.flush()

    # ------------------------------------------------------------------ summaries

    def scalars(self, step: int, values: dict) -> None:
        with self.writer.as_default():
            for tag, value in values.items():
                tf.summary.write(_tag(tag), tf.constant(float(value), tf.float32), step=step,
                                 metadata=self.scalar_meta)

    def histograms(self, step: int, arrays: dict, bins: int = 30) -> None:
        with self.writer.as_default():
            for tag, a in arrays.items():
                a = np.asarray(a, dtype=np.float64).ravel()
                a = a[np.isfinite(a)]
                if not a.size:
                    continue
                counts, edges = np.histogram(a, bins=bins)
                buckets = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
                tf.summary.write(_tag(tag), tf.constant(buckets, tf.float64), step=step,
                                 metadata=self.histogram_meta)

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


def _tag(name: str) -> str:
    return TAG.sub("_", str(name))
