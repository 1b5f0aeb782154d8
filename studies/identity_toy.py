"""Run the `identity_toy` study: `python studies/identity_toy.py [--seeds N] [--steps S] [--out DIR] ...`.

Same as `izoo study identity_toy ...`; the grid of configs and the figures are defined in
`inference_zoo/studies/identity_toy.py` (installed code, so `izoo study` never imports from a path
the user did not install). Finished cells are skipped, so a stopped study continues.
"""
import sys

from inference_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "identity_toy", *sys.argv[1:]]))
