"""`python -m imgdrop_cli` runs the `imgdrop` command."""

import sys

from imgdrop_cli.main import main

sys.exit(main())
