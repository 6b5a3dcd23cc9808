"""`python -m imgdrop_local` runs the local stack in the foreground (see server.py)."""

import os
import sys
import threading

from .server import main

code = main()
busy = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
if busy:
    # An invocation still at work after the drain would hold the interpreter's exit (it joins
    # its pool's threads): stop now, as Lambda stops an environment, and say what was cut short.
    # Straight to fd 2: a thread still at work may hold logging's or the stream's lock.
    os.write(2, f"imgdrop_local: stopping with threads still running: {', '.join(busy)}\n".encode())
    os._exit(code)
sys.exit(code)
