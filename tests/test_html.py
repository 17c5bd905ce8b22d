"""The HTML report: self-contained, escaped, and working in a real browser (headless Chromium)."""
import os
import re
import shutil

import keras
import pytest
from keras import layers

from helpers import ROOT, import_file, kerascheck

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
XSS = "<img src=x onerror=alert(1)>"


USER_CODE = """\
import keras


class Standardize(keras.layers.Layer):
    def call(self, x):
        mean = keras.ops.mean(x, axis=-1, keepdims=True)
        return (x - mean) / keras.ops.std(x, axis=-1, keepdims=True)
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report with findings from every tier: spec and probe findings in a model with a hostile
    layer name, a graph finding in custom code (with its source line), and a healthy model."""
    tmp = tmp_path_factory.mktemp("html")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,))
    x = layers.Dense(32, activation="relu", name="dead", bias_initializer=keras.initializers.Constant(-50.0))(inp)
    out = layers.Dense(1, name=XSS, kernel_initializer="zeros")(x)
    model = keras.Model(inp, out, name="mixed")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.save(tmp / "mixed.keras")

    (tmp / "userlayers.py").write_text(USER_CODE)
    module = import_file(tmp / "userlayers.py", "userlayers")
    inp = keras.Input((8,))
    custom = keras.Model(inp, layers.Dense(1)(module.Standardize(name="std")(inp)), name="custom")
    custom.compile(optimizer="adam", loss="mse")
    custom.save(tmp / "custom.keras")

    path = tmp / "report.html"
    proc = kerascheck("--html", str(path), "--budget", "30", "--custom-objects", "userlayers.py", "mixed.keras",
                      "custom.keras", os.path.join(ROOT, "examples", "bad_init.keras"),
                      os.path.join(ROOT, "examples", "healthy.keras"), cwd=str(tmp))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip().endswith(f"HTML report: {path}")
    return path, proc


def test_report_is_self_contained_and_escapes_the_file(report):
    path, _ = report
    html = path.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and XSS not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)  # nothing fetched from anywhere
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    for needle in ("KC401 unhealthy-weights", "KC605 dead-units", "Why it matters", "Rule documentation",
                   "Loss while overfitting 10 examples", "Layers and weights", "probes: CPU",
                   "KC102 risky-division", "tiers: spec, model, graph, probe",
                   "<b>Source:</b> <code>userlayers.py:7</code>"):
        assert needle in html, needle


@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed here (.ci/run installs it)")
def test_report_in_a_real_browser(report):
    from playwright.sync_api import sync_playwright

    path, _ = report
    errors, requests, dialogs = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")

        findings = page.locator(".finding[data-severity]")
        total = findings.count()
        assert total >= 5 and all(findings.nth(i).is_visible() for i in range(total))
        warnings = page.locator(".finding[data-severity=warning]").count()
        assert warnings >= 1
        page.locator(".sev-filter[value=warning]").uncheck()
        assert page.locator(".finding[data-severity]:visible").count() == total - warnings
        page.locator(".sev-filter[value=warning]").check()
        page.select_option("#rule-filter", "dead-units")
        visible = page.locator(".finding[data-severity]:visible")
        assert visible.count() >= 1 and all("dead-units" in visible.nth(i).inner_text() for i in range(visible.count()))
        page.select_option("#rule-filter", "")
        page.fill("#search", "onerror")
        assert page.locator(".finding[data-severity]:visible").count() == 1
        page.fill("#search", "")
        assert page.locator(".finding[data-severity]:visible").count() == total
        page.select_option("#rule-filter", "risky-division")  # the graph tier's finding, with its source line
        visible = page.locator(".finding[data-severity]:visible")
        assert visible.count() == 1 and "userlayers.py:7" in visible.first.inner_text()
        page.select_option("#rule-filter", "")

        hist = page.locator("svg.hist").first.bounding_box()
        assert hist and hist["width"] > 0 and hist["height"] > 0
        assert page.locator("svg.hist rect.bar").count() > 30
        chart = page.locator(".chart svg").first.bounding_box()
        assert chart and chart["width"] > 0 and page.locator("polyline.line").count() >= 3
        assert page.get_by_text(XSS).count() >= 1  # shown as text

        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "report.png"), full_page=True)

        # With JavaScript off nothing is hidden: the filters are a convenience, not a gate.
        plain = browser.new_context(java_script_enabled=False).new_page()
        plain.goto(path.as_uri())
        shown = plain.locator(".finding[data-severity]")
        assert shown.count() == total and all(shown.nth(i).is_visible() for i in range(total))
        plain.emulate_media(media="print")
        assert not plain.locator("#filters").is_visible()
        browser.close()
    assert errors == [] and dialogs == []
    assert requests == [path.as_uri()]


@pytest.fixture(scope="module")
def monitored_report(tmp_path_factory):
    """The report kerascheck.Monitor writes at the end of a real fit: a dead layer, a loss that hardly moves."""
    import numpy as np

    import kerascheck

    path = tmp_path_factory.mktemp("monitored") / "training.html"
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((320, 8)).astype("float32")
    y = (x @ rng.standard_normal((8, 1))).astype("float32")
    model = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu", name="hidden"),
                              layers.Dense(16, activation="relu", name="dead",
                                           bias_initializer=keras.initializers.Constant(-20.0)),
                              layers.Dense(1, name="out")], name="monitored")
    model.compile(optimizer=keras.optimizers.SGD(0.02), loss="mse")
    monitor = kerascheck.Monitor(every=2, report=path, verbose=0)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[monitor])
    return path, monitor


def test_monitored_run_report_opens_in_a_real_browser(monitored_report):
    path, monitor = monitored_report
    html = path.read_text()
    assert "&lt;training of model &#39;monitored&#39;&gt;" in html and "KC605 dead-units" in html
    assert "the training run (30 steps, 3 epochs" in html
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed here (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    errors, requests = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        shown = page.locator(".finding[data-severity]")
        assert shown.count() == len(monitor.report.findings) >= 2
        assert all(shown.nth(i).is_visible() for i in range(shown.count()))
        page.select_option("#rule-filter", "dead-units")
        visible = page.locator(".finding[data-severity]:visible")
        assert visible.count() == 1 and "relu layer 'dead'" in visible.first.inner_text()
        page.select_option("#rule-filter", "")
        # The live run's charts: the loss and the gradient norms over the measured steps (zeros: off a log scale).
        assert page.locator(".chart svg").count() >= 2 and page.locator("polyline.line").count() >= 2
        assert page.locator("svg.hist rect.bar").count() > 10
        browser.close()
    assert errors == [] and requests == [path.as_uri()]
