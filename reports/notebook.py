"""The table a Report shows in a notebook (Jinja2 with autoescaping: names come from model files)."""
from __future__ import annotations

import jinja2

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""
<table class="kerascheck">
<thead><tr><th>model</th><th>severity</th><th>rule</th><th>layer</th><th>message</th><th>fix</th></tr></thead>
<tbody>
{% for m in models %}{% for f in m.findings %}
<tr><td>{{ m.path }}</td><td>{{ f.severity }}</td><td>{{ f.rule }} ({{ f.code }})</td><td>{{ f.layer or "" }}</td>
<td>{{ f.message }}</td><td><code>{{ f.fix }}</code></td></tr>
{% endfor %}{% for e in m.errors %}
<tr><td>{{ m.path }}</td><td>cannot check</td><td></td><td></td><td>{{ e.message }}</td><td></td></tr>
{% endfor %}{% if not m.findings and not m.errors %}
<tr><td>{{ m.path }}</td><td colspan="5">{% if m.unavailable %}no problems found by {{ m.rules_run }} of {{ m.rules_total }} rules; {{ m.unavailable|length }} could not run{% else %}no problems found{% endif %}</td></tr>
{% endif %}{% endfor %}
</tbody>
</table>
""")


def render_notebook_html(report) -> str:
    return _TEMPLATE.render(models=report.models)
