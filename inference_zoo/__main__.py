"""``python -m inference_zoo`` runs the ``izoo`` command line."""
import sys

from .cli import main

sys.exit(main())
