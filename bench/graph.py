"""Speed of the graph tier, as ratios against a bare trace measured in the same process.

    python bench/graph.py [--repeat 5]

On keras.applications.ResNet50(weights=None):
  (a) the floor: tf.function(model).get_concrete_function(TensorSpec) — a fresh trace;
  (b) kerascheck's whole graph tier: trace with op attribution, dataflow analysis,
      edge-input confirmation (kerascheck.tiers.graph.trace.build_graph, made to trace: on a model
      of Keras's own layers only, as ResNet50 is, kerascheck skips the trace entirely);
  (c) the same with Keras's own layers judged as if they were user code, so the
      analysis really walks every op (the worst case for the analysis).
Target: b/a <= 1.5. (a) and (b) alternate, after one warm-up of each, and the
medians are compared. (d) adds a hand-written softmax head, so a suspect is
confirmed by the five edge-input runs: the cost of a finding. Then the analysis time per op across several nets, to show it
is linear in the number of ops.
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from kerascheck.tiers.graph.trace import build_graph
    from kerascheck.options import Options

    model = keras.applications.ResNet50(weights=None)
    spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)

    def bare():
        tf.function(model).get_concrete_function(spec)

    def tier():
        # always_trace: ResNet50 has no custom code, which kerascheck itself would notice
        # and not trace at all; the benchmark measures the path a model with custom code takes.
        return build_graph(model, None, Options(), always_trace=True)

    def audit():
        return build_graph(model, None, Options(), judge_keras=True)

    times = {"a": [], "b": [], "c": []}
    bare(), tier(), audit()  # warm-up: TensorFlow's first trace pays one-off costs
    for _ in range(args.repeat):
        for key, fn in (("a", bare), ("b", tier), ("c", audit)):
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    graph = tier()
    full = audit()
    print(f"ResNet50: {graph.ops} ops, {graph.calls} layer calls, {full.user_ops} ops judged in (c)")
    print(f"  (a) bare trace             median {med['a']:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['a'])})")
    print(f"  (b) kerascheck graph tier  median {med['b']:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['b'])})")
    print(f"  (c) every op judged        median {med['c']:.2f} s  (analysis {full.seconds['analysis'] * 1000:.0f} ms)")
    print(f"b/a = {med['b'] / med['a']:.2f}  (target <= 1.5)")
    print(f"c/a = {med['c'] / med['a']:.2f}")

    # (d) ResNet50 with a hand-written softmax head: a suspect to confirm, so the five
    # edge-input runs are part of the time.
    class HandSoftmax(keras.layers.Layer):
        def call(self, x):
            e = keras.ops.exp(x)
            return e / keras.ops.sum(e, axis=-1, keepdims=True)

    # On the pooled features: on the classifier's own softmax output exp is bounded, and
    # the analysis knows it.
    body = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg")
    headed = keras.Model(body.inputs, HandSoftmax()(body.outputs[0]))
    build_graph(headed, None, Options())
    runs = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = build_graph(headed, None, Options())
        runs.append(time.perf_counter() - start)
    (suspect,) = result.suspects
    print(f"  (d) with a custom softmax head: median {statistics.median(runs):.2f} s "
          f"(confirmation {result.seconds['confirmation']:.2f} s; {suspect.rule} confirmed by {suspect.confirmed})")
    print(f"d/a = {statistics.median(runs) / med['a']:.2f}")

    print("analysis time per judged op (every op judged):")
    for name in ("MobileNetV2", "ResNet50", "EfficientNetB0", "DenseNet121"):
        net = model if name == "ResNet50" else getattr(keras.applications, name)(weights=None)
        result = build_graph(net, None, Options(), judge_keras=True)
        per_op = result.seconds["analysis"] / max(result.user_ops, 1) * 1e6
        print(f"  {name:<15} {result.user_ops:>5} ops  analysis {result.seconds['analysis'] * 1000:6.1f} ms  "
              f"{per_op:5.1f} us/op")


if __name__ == "__main__":
    main()
