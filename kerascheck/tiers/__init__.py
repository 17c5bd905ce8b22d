"""The tiers beyond the spec: each builds, once per file and only when a rule asks, facts that
need TensorFlow.

* `model`: Keras's loader in safe mode (what kerascheck.formats.load hands a Keras file's tiers);
* `modelio`: feeding any Keras model, naming its layers, taps on layer calls;
* `graph`: the forward pass as TensorFlow ops, judged by interval analysis, suspects confirmed;
* `probe`: short, seeded trainings and forward passes that measure what the rules judge.
"""
