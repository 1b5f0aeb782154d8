"""Run the `image_features` study: `python studies/image_features.py [--seeds N] [--steps S] [--out DIR] ...`.

Same as `izoo study image_features ...`; the grid of configs and the figures are defined in
`inference_zoo/studies/image_features.py` (installed code, so `izoo study` never imports from a path
the user did not install). Finished cells are skipped, so a stopped study continues.
"""
import sys

from inference_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "image_features", *sys.argv[1:]]))
