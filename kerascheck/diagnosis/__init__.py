"""Diagnosis: the rules' findings into causes and consequences.

* `links`: which findings may be one problem (direct links, and links to test);
* `interventions`: a cause's fix applied to kerascheck's copy, the symptom's probe re-run;
* `repair`: --fix-out, the verified fixes written to a copy of the user's file.
"""
from __future__ import annotations

from kerascheck.diagnosis.links import fold


def diagnose(findings: list, facts, options, rules, test: bool = True) -> tuple[list, list]:
    """The findings folded into causes and their consequences, and the changes verified on the way.

    A direct link folds at once; a link to test folds only when the cause's fix, applied to
    kerascheck's copy, makes the consequence's own rule pass on a re-run (not tried when
    `test` is false: --static runs nothing). Returns (findings, verified Changes for --fix-out).
    """
    order = facts.probe.layer_order if facts.probe is not None else []
    confirmed: dict = {}
    changes: list = []
    if test and findings:
        from kerascheck.diagnosis.interventions import verify  # the probe tier: never imported by --static

        confirmed, findings, changes = verify(findings, facts, options, order, rules)
    return fold(findings, order, confirmed), changes
