"""The tiers beyond the spec: each builds, once per file and only when a rule asks, facts that
need TensorFlow.

* `model`: the model loaded by Keras in safe mode (or a format's runnable), and the check's Options;
* `graph`: the forward pass as TensorFlow ops, judged by interval analysis, suspects confirmed;
* `probe`: short, seeded trainings and forward passes that measure what the rules judge.
"""
