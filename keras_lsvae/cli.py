"""What the command-line scripts (``scripts/*.py``) share: user errors as one line.

A bad setting, an unknown name or a missing file is the user's to fix, so the scripts print the
library's message (which says what to change or pass) as one ``error: ...`` line on stderr and
exit with code 2, like absl's own flag errors, instead of a traceback.
"""

from __future__ import annotations

import os
import sys

#: set (to anything) to get the traceback instead of the one-line message
TRACEBACK_ENV = "KERAS_LSVAE_TRACEBACK"

#: bad settings (ValueError), unknown registry names (KeyError), missing data, runs or files
#: and every other file-system problem (OSError: a workdir that is a file, an unwritable
#: folder, a truncated file), and the runtime failures TensorFlow and Keras raise on a corrupt
#: file (RuntimeError, printed with its type so that a bug still shows what it is)
USER_ERRORS = (ValueError, KeyError, OSError, RuntimeError)


def run_or_exit(function, *args, errors=USER_ERRORS, **kwargs):
    """``function(*args, **kwargs)``; on one of ``errors``, its message on stderr as
    ``error: ...`` and exit code 2, or the traceback with ``$KERAS_LSVAE_TRACEBACK`` set. (A
    KeyError's ``str`` is its repr: the message is printed.)"""
    try:
        return function(*args, **kwargs)
    except errors as error:
        if os.environ.get(TRACEBACK_ENV):  # a developer's run: the whole traceback
            raise
        if isinstance(error, KeyError) and error.args:
            message = error.args[0]
        elif isinstance(error, OSError) and not isinstance(error, FileNotFoundError) or (
                isinstance(error, RuntimeError)):
            message = f"{type(error).__name__}: {error}"
        else:
            message = error
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
