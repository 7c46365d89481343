"""The one family of expected errors: a bad input the user can fix.

``InputError`` (a ``ValueError``) covers bad parameters, names, files and data.  The command
line prints any of them as one line ``error: <what>, <which file or value>, <what to do>`` and
exits 2; every other exception is a bug and keeps its traceback (exit 1).
"""


class InputError(ValueError):
    """A parameter, name, file or data set that cannot be used as given; the message says which and why."""
