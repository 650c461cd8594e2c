"""``python -m sslkit``: the command line (:mod:`sslkit.app.cli`)."""
import sys

from sslkit.app.cli import main

sys.exit(main())
