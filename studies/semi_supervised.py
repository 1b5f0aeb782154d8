"""Run the `semi_supervised` study: `python studies/semi_supervised.py [--seeds N] [--steps S] [--out DIR] ...`.

Same as `izoo study semi_supervised ...`; the grid of configs and the figures are defined in
`inference_zoo/studies/semi_supervised.py` (installed code, so `izoo study` never imports from a path
the user did not install). Finished cells are skipped, so a stopped study continues.
"""
import sys

from inference_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "semi_supervised", *sys.argv[1:]]))
