"""The live results judged by the same rules the probes feed, the findings announced as they appear,
and the Report the command line and kerascheck.check() produce.

The rules' `facts.spec` comes from a copy of the model saved to a temporary .keras
file when training begins, read by kerascheck.formats.open_spec as any file is: the
configuration, the compile settings and the weights training started from. Spec
weights are judged once; later evaluations see the spec without its weights.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import traceback
from dataclasses import replace
from types import SimpleNamespace

import keras

from kerascheck.diagnosis.links import fold
from kerascheck.engine import ModelResult, Report
from kerascheck.errors import error_line
from kerascheck.facts.layerstats import layer_table
from kerascheck.formats import open_spec
from kerascheck.reports.html import render_html
from kerascheck.reports.text import render_text
from kerascheck.rule import SEVERITY_RANK, Facts, Skip
from kerascheck.tiers.model import with_live_classes

# The rules that judge a training run. The others judge a saved file, the graph of custom
# code, or probes of their own (10 examples overfitted, batch size 1); the monitor lists
# them as skipped, with kerascheck.check(model) as the way to run them.
LIVE_RULES = ("nan-in-training", "exploding-gradients", "vanishing-gradients", "dead-units", "unhealthy-weights",
              "missing-rnn-clipping", "no-lr-schedule", "nonfinite-data", "stalled-loss", "train-inference-gap")
# The rules that read measurements on the fixed batch.
BATCH_RULES = ("exploding-gradients", "vanishing-gradients", "dead-units", "train-inference-gap")

_NO_SPEC = SimpleNamespace(compile=None, layers=(), inputs=(), outputs=(), config={}, raw_compile=None,
                           layer=lambda name: None)


class Judge:
    """The rules over one fit: what they found (each finding stamped with the step and epoch it first
    appeared at), what they skipped and why, the errors, and in the end the Report."""

    def __init__(self, rules: list, record, stop_on: str | None, verbose: int, report_path: str | None, say):
        self.rules = rules
        self.live_rules = [r for r in rules if r.name in LIVE_RULES]
        self.record = record  # a record.Recorder: the run, the results, the step and epoch
        self.stop_on, self.verbose, self.report_path = stop_on, verbose, report_path
        self.say = say  # prints a line above Keras's progress bar
        self.report = None
        self.stopped_at: dict | None = None
        self.errors: list = []
        self._seen: dict = {}  # finding key -> Finding, first appearance, stamped with step and epoch
        self._judged: set = set()
        self._skip_reasons: dict = {}
        self._spec = None
        self._spec_view = None
        self._weights_judged = False
        self._stack = contextlib.ExitStack()
        self._tmp = None

    def read_spec(self):
        model = self.record.model
        self._tmp = tempfile.mkdtemp(prefix="kerascheck-monitor-")
        path = os.path.join(self._tmp, f"{_safe_name(model.name)}.keras")
        try:
            model.save(path)
            spec = self._stack.enter_context(open_spec(path))
        except Exception as exc:

            self.errors.append({"message": f"kerascheck could not save a copy of the model to read its "
                                           f"configuration ({error_line(exc)}); the rules that read it did not run"})
            self._spec = None
            return
        self._spec = with_live_classes(spec, SimpleNamespace(paths=self.record.paths))
        self._spec_view = replace(self._spec, layers=tuple(replace(l, weights=()) for l in self._spec.layers))

    def evaluate(self, bad_batch, final: bool = False):
        """The live rules on what has been measured; new findings announced, and training stopped at
        the first one at least as severe as stop_on. `bad_batch`: the batch that broke training, or None."""

        record = self.record
        run = record.run
        run.finished = final
        run.steps_run = record.steps
        record.results.seconds = record.seconds
        record.results.data_description = self._describe()
        # The weights training started from are judged once; later evaluations see the spec without them.
        spec = self._spec_view if self._weights_judged else self._spec
        self._weights_judged = spec is not None
        facts = Facts(spec=spec if spec is not None else _NO_SPEC, model=record.model, data=bad_batch,
                      probe=record.results)
        step, epoch = record.steps, record.epoch
        new = []
        for rule in self.live_rules:
            if rule.name == "nonfinite-data" and bad_batch is None:
                continue  # the batches are read only when one breaks the loss
            if record.no_batch is not None and rule.name in BATCH_RULES:
                self._skip_reasons[rule.name] = f"no fixed batch to measure on: {record.no_batch}"
                continue
            if record.no_gradients is not None and rule.name in ("exploding-gradients", "vanishing-gradients"):
                self._skip_reasons[rule.name] = f"the monitor could not measure gradients: {record.no_gradients}"
                continue
            if record.no_modes is not None and rule.name == "train-inference-gap":
                self._skip_reasons[rule.name] = ("the monitor could not score the fixed batch in training and "
                                                 f"inference mode: {record.no_modes}")
                continue
            if spec is None and rule.tier == "spec":
                self._skip_reasons[rule.name] = "no copy of the model could be saved to read its configuration"
                continue
            try:
                found = list(rule.check(facts))
            except Skip as exc:
                self._skip_reasons[rule.name] = str(exc)
                continue
            except Exception as exc:
                if os.environ.get("KERASCHECK_DEBUG"):
                    raise
                where = traceback.extract_tb(exc.__traceback__)[-1]
                self.errors.append({"message": f"internal error in rule {rule.name} ({type(exc).__name__}: {exc} "
                                               f"at {os.path.basename(where.filename)}:{where.lineno}); please "
                                               "report it"})
                continue
            self._judged.add(rule.name)
            for f in found:
                key = _key(f)
                if key not in self._seen:
                    f = replace(f, evidence={"step": step, "epoch": epoch, **f.evidence})
                    self._seen[key] = f
                    new.append(key)
        if not new:
            return
        roots = {_key(f): f for f in fold(list(self._seen.values()), record.layer_order)}
        announced = [roots[k] for k in new if k in roots]
        for f in announced:
            self._announce(f)
        if self.stop_on is not None and self.stopped_at is None:
            worst = [f for f in announced if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[self.stop_on]]
            if worst:
                f = worst[0]
                self.stopped_at = {"step": f.evidence.get("step"), "epoch": f.evidence.get("epoch"), "rule": f.rule,
                                   "layer": f.layer}
                record.model.stop_training = True
                self.say(f"kerascheck: stopping training at step {f.evidence.get('step')} (stop_on="
                         f"{self.stop_on!r}): {f.rule}")

    def _describe(self) -> str:
        run = self.record.run
        steps = self.record.steps
        epochs = len(run.epoch_losses)
        measured = len(run.losses)
        how = (f"every {run.every} steps" + (" (chosen automatically)" if run.auto_every else "")) \
            if measured > 1 else "once"
        batch = (f" on a fixed batch of {run.batch_examples} examples ({run.batch_source})"
                 if run.batch_examples else "")
        return (f"the training run ({steps} step{'s' if steps != 1 else ''}"
                + (f", {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "")
                + f"; gradients measured {measured} time{'s' if measured != 1 else ''}, {how}{batch})")

    def _announce(self, f):
        if not self.verbose:
            return
        where = f" layer '{f.layer}'" if f.layer else ""
        self.say(f"kerascheck: {f.severity} {f.code} {f.rule}{where} (step {f.evidence.get('step')}, epoch "
                 f"{f.evidence.get('epoch')}): {f.message}")

    # ------------------------------------------------------------------ the report

    def finish(self):
        """The Report, and the HTML report when a path was given."""
        record = self.record
        model, run = record.model, record.run
        result = ModelResult(path=f"<training of model {model.name!r}>", format="keras",
                             keras_version=keras.__version__)
        try:
            result.param_count = int(model.count_params())
        except Exception:
            result.param_count = None
        if run is not None:
            result.tiers = ["spec", "probe"] if self._spec is not None else ["probe"]
            result.probe = record.results
            findings = fold(list(self._seen.values()), record.layer_order)
            findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], not f.evidence.get("consequences"), f.code,
                                         f.layer or ""))
            result.findings = findings
        for rule in self.rules:
            if rule.name not in LIVE_RULES:
                result.skipped.append({"rule": rule.name, "reason": "it judges the saved model or a probe run of its "
                                                                    "own, not the training run: run "
                                                                    "kerascheck.check(model) for it"})
            elif rule.name not in self._judged and rule.name in self._skip_reasons:
                reason = self._skip_reasons[rule.name]
                if run is not None and run.diverged_step is not None:
                    reason = (f"training turned non-finite at step {run.diverged_step}, after "
                              f"{len(run.losses)} measurement{'s' if len(run.losses) != 1 else ''}, before there was "
                              f"enough to judge ({reason})")
                elif run is not None and "at least 10 steps" in reason:
                    reason += f" (the monitor measured {len(run.losses)}; pass every= to measure more often)"
                result.skipped.append({"rule": rule.name, "reason": reason})
        result.errors = list(self.errors)
        result.rules_total = len(self.rules)
        result.rules_run = len(self.rules) - len(result.skipped)
        if self.report_path and self._tmp is not None:
            result.layers = self._final_layers()
        self.report = Report(models=[result], rules=list(self.rules))
        if self.report_path:

            with open(self.report_path, "w", encoding="utf-8") as fh:
                fh.write(render_html(self.report))

    def _final_layers(self) -> list:
        """Per-layer weight statistics of the model as training left it, for the HTML report."""
        path = os.path.join(self._tmp, "final.keras")
        try:
            self.record.model.save(path)
            with open_spec(path) as spec:
                return layer_table(spec)
        except Exception:
            return []

    def print_report(self):
        """The report as text, and where the HTML report is."""
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        self.say(render_text(self.report, color=color).rstrip("\n"))
        if self.report_path and os.path.exists(self.report_path):
            self.say(f"HTML report: {self.report_path}")

    def close(self):
        """The spec's file and the temporary folder of the model's copies, gone."""
        self._stack.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _key(f) -> tuple:
    ev = f.evidence
    return f.rule, f.layer, str(ev.get("kind") or ev.get("kind_of_problem") or "")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name or "model")[:64] or "model"
