"""`python -m imgdrop_local` runs the local stack in the foreground (see server.py).

It leaves without the interpreter's finalization, as Lambda ends an environment: after a stack
has rendered images, finalization sometimes hung in native code (faulthandler showed the main
thread alone, with no Python frame), and it joins any invocation still at work."""

import os
import sys

from .server import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
