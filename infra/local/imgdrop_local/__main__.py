"""`python -m imgdrop_local` runs the local stack in the foreground (see server.py)."""

import sys

from .server import main

sys.exit(main())
