"""What the command-line scripts (``scripts/*.py``) share: user errors as one line.

A bad setting, an unknown name or a missing file is the user's to fix, so the scripts print the
library's message (which says what to change or pass) as one ``error: ...`` line on stderr and
exit with code 2, like absl's own flag errors, instead of a traceback.
"""

from __future__ import annotations

import sys

#: bad settings (ValueError), unknown registry names (KeyError), missing data, runs or files
USER_ERRORS = (ValueError, FileNotFoundError, KeyError)


def run_or_exit(function, *args, errors=USER_ERRORS, **kwargs):
    """``function(*args, **kwargs)``; on one of ``errors``, its message on stderr as
    ``error: ...`` and exit code 2. (A KeyError's ``str`` is its repr: the message is printed.)"""
    try:
        return function(*args, **kwargs)
    except errors as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
