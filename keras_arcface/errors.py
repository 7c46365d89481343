"""The one family of expected errors: a bad input the user can fix.

``InputError`` (a ``ValueError``) covers bad parameters, names, files and data.  The command
line prints any of them as one line ``error: <what>, <which file or value>, <what to do>`` and
exits 2; every other exception is a bug and keeps its traceback (exit 1).  An error whose remedy is
spelled differently on the command line (``--url``) and in Python (``urls=``) carries both:
``str(error)`` is the Python one, ``error.cli_message`` the command line's.
"""


class InputError(ValueError):
    """A parameter, name, file or data set that cannot be used as given; the message says which and why.
    ``cli_message``: the same message with the command line's flags instead of Python's arguments."""

    def __init__(self, message="", cli_message=None):
        super().__init__(message)
        self.cli_message = cli_message or message
