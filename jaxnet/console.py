"""The ``jaxnet`` console script: Ctrl-C is handled from its first instant.

The script's wrapper imports its entry point before calling it, so a handler installed by
:func:`jaxnet.cli.main` would come after the imports of the command line (NumPy among them):
a Ctrl-C there printed a traceback. This module imports nothing but the standard library
before it installs the same handler; :func:`jaxnet.cli.main` then keeps it.
"""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED = 130


def _leave(signum: int, frame: object) -> None:
    """``jaxnet: interrupted`` and exit 130, at once (see :func:`jaxnet.cli.main`)."""
    del signum, frame
    os.write(sys.stderr.fileno(), b"jaxnet: interrupted\n")
    os._exit(INTERRUPTED)


def main() -> int:
    """Install the Ctrl-C handler, then run the command."""
    signal.signal(signal.SIGINT, _leave)
    from jaxnet.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
