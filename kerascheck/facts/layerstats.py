"""Per-layer weight statistics and histograms for the HTML report, read while the file is open."""
from __future__ import annotations

import numpy as np

from kerascheck.facts.stats import chunked_histogram, chunked_stats, compute_fans, histogram, tensor_stats

CHUNK_BYTES = 256 << 20
KERNELS = {"kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel"}


def layer_table(spec) -> list[dict]:
    rows = []
    for layer in spec.layers:
        if layer.is_model:
            continue
        tensors = []
        for ref in layer.weights:
            if np.dtype(ref.dtype).kind not in "fiub":
                continue
            if ref.nbytes > CHUNK_BYTES:
                st = chunked_stats(ref.chunks(CHUNK_BYTES))
                hist = chunked_histogram(ref.chunks(CHUNK_BYTES), st.min, st.max)
            else:
                a = ref.read()
                st, hist = tensor_stats(a), histogram(a)
            expected = None
            if ref.name in KERNELS and len(ref.shape) >= 2:
                fan_in, fan_out = compute_fans(ref.shape)
                expected = float(np.sqrt(2.0 / (fan_in + fan_out)))  # Glorot, Keras's default
            tensors.append({"name": ref.name, "path": ref.path, "shape": list(ref.shape), **st.to_dict(),
                            "histogram": hist, "expected_std": expected})
        rows.append({"layer": layer.qualname, "class_name": layer.class_name, "params": layer.param_count,
                     "output_shape": _output_shape(layer), "tensors": tensors})
    return rows


def _output_shape(layer) -> str:
    units = layer.config.get("units") or layer.config.get("filters")
    return f"(..., {units})" if isinstance(units, int) else ""
