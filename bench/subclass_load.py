"""What the model tier costs on a keras.Model subclass, against Keras's own load_model of the same file.

    python bench/subclass_load.py [--repeat 5]

A subclass of about 2M parameters (a list of Dense blocks, a dict of heads, a Functional
encoder held as an attribute), trained one step and saved. In one process, after the
imports, the median of --repeat runs of:
  (a) keras.models.load_model(path)                       Keras builds it from build_config
  (b) kerascheck.tiers.model.load_model(spec, options)      the same, after kerascheck's checks
  (c) (b) plus kerascheck.tiers.probe.run.prepare(...)              plus inputs, layer names, roles, meanings
Target: (b)/(a) <= 1.0 (building from build_config costs no more than Keras's own load).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import keras
    import numpy as np
    from keras import layers

    from kerascheck.options import Options
    from kerascheck.tiers.model import load_model
    from kerascheck.tiers.probe.run import prepare
    from kerascheck.formats import open_spec

    @keras.saving.register_keras_serializable(package="bench")
    class Big(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            inp = keras.Input((256,))
            self.encoder = keras.Model(inp, layers.Dense(512, activation="relu")(inp), name="encoder")
            self.blocks = [layers.Dense(512, activation="relu") for _ in range(6)]
            self.heads = {"a": layers.Dense(10), "b": layers.Dense(10)}

        def call(self, x):
            x = self.encoder(x)
            for block in self.blocks:
                x = block(x)
            return self.heads["a"](x) + self.heads["b"](x)

    model = Big()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((32, 256), "float32"), np.zeros((32, 10), "float32"), epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.keras")
        model.save(path)
        options = Options()
        times = {"a": [], "b": [], "c": []}
        for _ in range(args.repeat):
            keras.backend.clear_session()
            start = time.perf_counter()
            keras.models.load_model(path)
            times["a"].append(time.perf_counter() - start)
            keras.backend.clear_session()
            with open_spec(path) as spec:
                start = time.perf_counter()
                loaded = load_model(spec, options)
                times["b"].append(time.perf_counter() - start)
                prepare(loaded, spec, options)
                times["c"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"subclassed model, {model.count_params():,} parameters, median of {args.repeat} in one process:")
    print(f"  (a) keras.models.load_model           {med['a']:.3f} s")
    print(f"  (b) kerascheck model tier: load       {med['b']:.3f} s")
    print(f"  (c) load + prepare                    {med['c']:.3f} s")
    print(f"  b/a = {med['b'] / med['a']:.2f}   (target <= 1.0)")
    print(f"  c/a = {med['c'] / med['a']:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
