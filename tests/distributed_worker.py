"""Run by tests/test_distributed.py under torchrun: train (or resume) one tiny run data-parallel.

    python -m torch.distributed.run --nproc_per_node=2 tests/distributed_worker.py RUN_DIR METHOD
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import tiny_config  # noqa: E402

from inference_zoo.engine import distributed  # noqa: E402
from inference_zoo.engine.train import Trainer  # noqa: E402

if __name__ == "__main__":
    distributed.start("cpu")
    try:
        Trainer(tiny_config(sys.argv[2], steps=12, checkpoint_every=4, log_every=2), sys.argv[1]).run()
    finally:
        distributed.stop()
