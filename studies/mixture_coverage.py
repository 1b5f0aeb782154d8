"""Run the `mixture_coverage` study: `python studies/mixture_coverage.py [--seeds N] [--steps S] [--out DIR] ...`.

Same as `izoo study mixture_coverage ...`; the grid of configs and the figures are defined in
`inference_zoo/studies/mixture_coverage.py` (installed code, so `izoo study` never imports from a path
the user did not install). Finished cells are skipped, so a stopped study continues.
"""
import sys

from inference_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "mixture_coverage", *sys.argv[1:]]))
