"""The command line: a thin layer over the engine."""
from __future__ import annotations

import os
import sys

import click

from kerascheck.config import find_config
from kerascheck.engine import all_rules, find_rule, select_rules
from kerascheck.errors import UsageError
from kerascheck.options import DEFAULT_BUDGET, Options
from kerascheck.reports import render
from kerascheck.runners import Limits, Listener, check_paths
from kerascheck.runners.cluster import ENVIRONMENT, import_distributed, local_workers
from kerascheck.runners.progress import ProgressBar
from kerascheck.runners.sources import expand_paths
from kerascheck.version import __version__

FAIL_ON = ("error", "warning", "info")
FORMATS = ("text", "json", "jsonl", "sarif", "github")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _check_gpu() -> None:
    """--device gpu without a GPU is a usage error, found before any file is read.

    Asked in a throwaway process: importing TensorFlow here would force the workers
    to start slowly (spawn), and this process must stay free of it.
    """
    import subprocess

    code = ("import os; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3'); import tensorflow as tf; "
            "print(len(tf.config.list_physical_devices('GPU')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    if out in ("", "0"):
        raise UsageError("--device gpu was given but TensorFlow sees no GPU (use --device auto or cpu)")


def _number(config: dict, key: str, cast, default):
    """A numeric setting from the config file, or the default; a bad value is a usage error."""
    if key not in config:
        return default
    try:
        return cast(config[key])
    except (TypeError, ValueError):
        raise UsageError(f"{key} in the kerascheck configuration must be a number, not {config[key]!r}") from None


def _split(values) -> list[str]:
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--select", multiple=True, metavar="RULES",
              help="Only these rules: names, codes or code prefixes (KC2), comma-separated; repeatable.")
@click.option("--ignore", multiple=True, metavar="RULES", help="Leave out these rules (same forms as --select).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding is at least this severe.  [default: warning]")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Output format.  [default: text]")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE instead of standard output.")
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the HTML report here.  [default: kerascheck-report.html with --format text]")
@click.option("--no-html", "no_html", is_flag=True, help="Write no HTML report.")
@click.option("--static/--no-static", default=None,
              help="Run only rules that read the saved file (no TensorFlow import, nothing executed).")
@click.option("--data", metavar="FILE", default=None,
              help="Sample data for the probes: FILE.npz (x, y, or x_<input name>), FILE.npy (inputs), or "
                   "module:function returning arrays or a tf.data.Dataset.")
@click.option("--custom-objects", "custom_objects", multiple=True, metavar="FILE.py|MODULE",
              help="Your code that registers custom layers, imported before loading; repeatable.")
@click.option("--unsafe", is_flag=True, help="Let Keras run code inside the model file (Lambda bytecode). "
                                               "Only for files you trust.")
@click.option("--budget", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Time the probes of one model may take together; a probe it stops is not judged "
                   "(its rules are skipped with the reason).  [default: 300]")
@click.option("--device", type=click.Choice(("auto", "cpu", "gpu")), default=None,
              help="Where the probes run; auto takes a GPU when TensorFlow sees one.  [default: auto]")
@click.option("--seed", type=int, default=None, help="Seed for synthetic data and probe training.  [default: 0]")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Check this many files in parallel, each in its own worker process.  [default: 1]")
@click.option("--timeout", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Stop checking a file after this long (exit 2 for that file).  "
                   "[default: 600, or 60 with --static]")
@click.option("--max-memory", "max_memory", type=click.IntRange(min=256), default=None, metavar="MB",
              help="Stop checking a file whose worker uses more memory than this.  "
                   "[default: 3/4 of RAM over --jobs, at most 8192; on a cluster, each worker's share of "
                   "its Dask memory limit]")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Check on a Dask cluster, one task per model: tcp://host:8786, or local:N for N worker "
                   "processes on this machine (needs pip install 'kerascheck[dask]').  "
                   "none runs here.  [default: $DASK_SCHEDULER_ADDRESS if set, else no cluster]")
@click.option("--cache", "cache", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Reuse the results of models unchanged since a run with the same kerascheck and options; "
                   "check only new or changed ones.")
@click.option("--fix-out", "fix_out", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write a copy of each model with its verified fixes applied to DIR/<name>.fixed.keras, "
                   "with DIR/<name>.fixed.md listing the changes (the model files are never written).")
@click.option("--verbose", "-v", is_flag=True,
              help="Show TensorFlow's and Keras's own messages, and the traceback of any internal error.")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option("--explain", metavar="RULE", help="Print a rule's documentation and exit.")
@click.version_option(__version__, "--version", prog_name="kerascheck")
def cli(paths, select, ignore, fail_on, fmt, output, html, no_html, static, data, custom_objects, unsafe, budget, device, seed,
        jobs, timeout, max_memory, scheduler, cache, fix_out, verbose, list_rules, explain):
    """Check saved Keras models (.keras, .h5, or folders of them) for reasons they will not train well.

    Exit status: 0 nothing at or above --fail-on, 1 findings, 2 a file could not be
    checked or the command line was wrong.

    Settings may also come from [tool.kerascheck] in pyproject.toml or [kerascheck]
    in setup.cfg (keys: select, ignore, fail-on, format, output, static, scheduler, cache, ...).

    PATH may be an fsspec URL (s3://bucket/models/, gs://..., file://...): listed where it is,
    each model copied to a private temporary folder and checked there.
    """
    if list_rules:
        for rule in all_rules():
            click.echo(f"{rule.code}  {rule.name:<24} {rule.severity:<8} {rule.tier:<6} {rule.summary}")
        return 0
    if explain:
        rule = find_rule(explain)
        if rule is None:
            raise UsageError(f"unknown rule {explain!r} (see kerascheck --list-rules)")
        click.echo(f"{rule.name} ({rule.code}, default severity {rule.severity}, tier {rule.tier})\n")
        click.echo(rule.doc.strip())
        return 0
    if not paths:
        raise UsageError("no PATH given (try kerascheck --help)")

    config, _ = find_config()
    select = _split(select) or config.get("select", [])
    ignore = _split(ignore) or config.get("ignore", [])
    fail_on = fail_on or config.get("fail-on", "warning")
    fmt = fmt or config.get("format", "text")
    output = output or config.get("output")
    static = static if static is not None else config.get("static", False)
    if fail_on not in FAIL_ON:
        raise UsageError(f"fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")

    options = Options(
        custom_objects=tuple(custom_objects) or tuple(config.get("custom-objects", ())),
        unsafe=unsafe,
        data=data,
        budget=budget if budget is not None else _number(config, "budget", float, DEFAULT_BUDGET),
        device=device or config.get("device", "auto"),
        seed=seed if seed is not None else _number(config, "seed", int, 0),
        progress=sys.stderr.isatty() and fmt == "text" and output is None,
        verbose=verbose,
        fix_out=fix_out,
    )
    if fix_out and static:
        raise UsageError("--fix-out needs the probes, which --static turns off")
    # The HTML report is for people: written by default alongside text output, and on
    # request (--html) alongside the machine formats, so CI gets no surprise files.
    html = None if no_html else (html or config.get("html") or ("kerascheck-report.html" if fmt == "text" else None))
    options.layer_stats = html is not None
    if unsafe:
        click.echo("kerascheck: warning: --unsafe lets code inside the model files run when Keras loads them; "
                   "use it only on files you trust", err=True)
    if options.device == "gpu" and not static:
        _check_gpu()
    jobs = jobs or _number(config, "jobs", int, 1)
    limits = Limits(timeout=timeout or _number(config, "timeout", float, 60.0 if static else 600.0),
                    memory_mb=max_memory or _number(config, "max-memory", int, None), jobs=jobs)
    # The flag, then the environment, then the project's file; "none" runs locally whatever they say.
    scheduler = scheduler or os.environ.get(ENVIRONMENT) or config.get("scheduler") or None
    if scheduler is not None and scheduler.strip().lower() == "none":
        scheduler = None
    if scheduler is not None:
        import_distributed()  # one clear line, before anything is read, when Dask is missing
        local_workers(scheduler)  # and for a malformed local:N
    cache = cache or config.get("cache")
    rules = select_rules(select, ignore)
    store = None
    if cache:
        from kerascheck.runners.cache import Cache

        store = Cache(cache, rules, static, options)
        if not store.enabled:
            click.echo(f"kerascheck: warning: --cache is not used: {store.why_not}", err=True)
            store = None
    files = expand_paths(list(paths))
    # A bar for several files; one file's probes show their own stages (options.progress).
    bar = None
    if sys.stderr.isatty() and fmt == "text" and len(files) > 1:
        slots = jobs if scheduler is None else (local_workers(scheduler) or len(files))
        bar = ProgressBar(sys.stderr, slots=slots)
    if bar is not None:
        options.progress = False
    stream = _Stream(output) if fmt == "jsonl" else None
    listener = _Listeners([bar, stream])
    try:
        report = check_paths(files, rules, static=static, options=options, limits=limits, scheduler=scheduler,
                             cache=store, listener=listener,
                             expanded=True)
    finally:
        if bar is not None:
            bar.close()
        if stream is not None:
            stream.close()
    if not report.models:
        click.echo(f"kerascheck: warning: no .keras, .h5 or .hdf5 files found under {', '.join(paths)}", err=True)
    if store is not None and verbose:
        click.echo(f"kerascheck: {store.hits} of {len(report.models)} results reused from the cache in {cache}",
                   err=True)
    for model in report.models:
        for err in model.errors:
            click.echo(f"kerascheck: error: {model.path}: {err['message']}", err=True)

    color = (output is None and fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    text = "" if fmt == "jsonl" else render(report, fmt, color=color) if fmt == "text" else render(report, fmt)
    if html:
        from kerascheck.reports.html import render_html  # jinja2: imported only when a page is written

        _write(html, render_html(report))
        if fmt == "text":
            text += f"HTML report: {html}\n"
    if fmt == "jsonl":
        pass  # already written, a line per model as each check ended
    elif output:
        _write(output, text)
    else:
        click.echo(text, nl=False, color=color)
    return report.exit_code(fail_on)


class _Stream(Listener):
    """--format jsonl: each model's line written as its result arrives, to stdout or --output."""

    def __init__(self, output: str | None):
        self.fh = None
        if output:
            try:
                self.fh = open(output, "w", encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None

    def finished(self, result, cached: bool) -> None:
        from kerascheck.reports.json_report import render_model_line

        line = render_model_line(result)
        if self.fh is not None:
            self.fh.write(line)
            self.fh.flush()
        else:
            click.echo(line, nl=False)
            sys.stdout.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


class _Listeners(Listener):
    def __init__(self, listeners):
        self.listeners = [x for x in listeners if x is not None]

    def planned(self, total: int) -> None:
        for x in self.listeners:
            x.planned(total)

    def started(self, source: str) -> None:
        for x in self.listeners:
            x.started(source)

    def finished(self, result, cached: bool) -> None:
        for x in self.listeners:
            x.finished(result, cached)


def main(argv=None) -> None:
    try:
        code = cli.main(args=argv, prog_name="kerascheck", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("kerascheck: interrupted", err=True)
        code = 130
    except click.ClickException as exc:
        click.echo(f"kerascheck: error: {' '.join(exc.format_message().split())}", err=True)
        code = 2
    except UsageError as exc:
        click.echo(f"kerascheck: error: {exc}", err=True)
        code = 2
    except BrokenPipeError:
        code = 1
    except Exception as exc:  # a bug of ours: still one line, still exit 2
        if os.environ.get("KERASCHECK_DEBUG"):
            raise
        if argv is not None and ("--verbose" in argv or "-v" in argv) or "--verbose" in sys.argv[1:]:
            import traceback

            traceback.print_exception(exc)
        click.echo(f"kerascheck: internal error: {type(exc).__name__}: {exc} (run with --verbose for the "
                   "traceback)", err=True)
        code = 2
    sys.exit(code if isinstance(code, int) else 0)
