"""Errors that end the check of one file (exit 2) with one line for the user."""


class InputError(Exception):
    """A file that cannot be checked: missing, corrupt, hostile or unsupported.

    The message is shown to the user as one line, so it must say what is wrong
    and, where there is one, what to do instead.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class UsageError(Exception):
    """Bad flags or configuration: one line on stderr, exit 2."""


class TierUnavailable(Exception):
    """A tier could not be built (or a format's model cannot be run); the rules that need it are skipped
    with this reason."""


def error_line(exc: BaseException) -> str:
    """The line of an exception that says what went wrong, without TensorFlow's traceback noise.

    TensorFlow puts "Graph execution error:" and the traced code's stack first and the
    op's own message last; Keras wraps errors in "Exception encountered when calling ...".
    """
    text = str(getattr(exc, "message", None) or exc)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    noise = ("Exception encountered", "in user code", "Graph execution error", "Detected at node",
             "Arguments received by", "[[{{node", "File \"", "Traceback", "•")
    useful = [l for l in lines if not l.startswith(noise) and not l.startswith("[[") and "{{node" not in l]
    last_is_cause = lines and (lines[0].startswith(("Graph execution error", "Detected at node"))
                               or "in user code" in lines[0])
    line = useful[-1] if useful and last_is_cause else (useful[0] if useful else (lines[0] if lines else
                                                                                   type(exc).__name__))
    line = line.split("\t [[")[0].split(" [[{{node")[0].strip()
    name = type(exc).__name__
    if line.startswith(f"{name}: "):
        line = line[len(name) + 2:]
    # The message Keras wraps is the one that says what went wrong.
    inner = exc.__cause__ or exc.__context__
    if inner is not None and ("could not be deserialized" in line or "Exception encountered" in text[:40]):
        return error_line(inner)
    return f"{type(exc).__name__}: {line[:300]}"
