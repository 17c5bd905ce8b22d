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
