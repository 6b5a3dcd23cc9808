"""`python -m imgdrop_local` runs the local stack in the foreground (see server.py)."""

import os
import sys
import threading

from .server import log, main

code = main()
busy = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
if busy:
    # An invocation still at work after the drain would hold the interpreter's exit (it joins
    # its pool's threads): stop now, as Lambda stops an environment, and say what was cut short.
    log.warning("stopping with invocations still running: %s", ", ".join(busy))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
