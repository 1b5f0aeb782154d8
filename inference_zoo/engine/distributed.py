"""One run trained data-parallel over several processes with torch.distributed:
``torchrun --nproc_per_node=N -m inference_zoo compare ...`` (NCCL on CUDA, gloo on CPU).

Every process holds the whole model and the seed's whole training set, draws the same global
minibatch indices and noise as a one-process run at the same ``--batch-size`` (the global batch),
and trains on its slice of them:
- BatchNorm statistics are taken over the global batch (sums all-reduced, differentiably), and the
  running averages follow the global batch's mean and variance;
- each optimiser group's gradients are averaged over the processes (one flattened all-reduce per
  group) before the step: ``update`` takes gradients with ``torch.autograd.grad``, which DDP's
  reducer would not see;
- logged means are averaged over the processes.
So the run's numbers equal the one-process run's to float tolerance (sums in another order), and
its checkpoints are the one-process run's format (a data-parallel run resumes a one-process
checkpoint; tests/test_distributed.py). Process 0 writes
(folders, logs, checkpoints, results, figures); the others train and write nothing.
"""
from __future__ import annotations

import copy
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..core.errors import UserError
from ..nets.noise import Noise, use_noise
from ..strategies import Phase
from .layouts import OneRun, Run


def size() -> int:
    """How many processes train each run (1 without torch.distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if size() > 1 else 0


def is_writer() -> bool:
    """Whether this process writes files (process 0; the only one without torch.distributed)."""
    return rank() == 0


def barrier() -> None:
    if size() > 1:
        dist.barrier()


def launched() -> bool:
    """Whether torchrun (or another launcher) started this process as one of several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str) -> None:
    """Join the process group torchrun describes in the environment: NCCL on CUDA, gloo on CPU."""
    if not launched() or dist.is_initialized():
        return
    cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not cuda:
        raise UserError("--device cuda: CUDA is not available here")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class RankSlice(Noise):
    """This process's rows of the global batch's noise: every process draws the one-process run's
    noise from the same generator state and keeps its slice."""

    def __init__(self, index: int, count: int) -> None:
        self.index, self.count = index, count

    def randn(self, *shape, device=None, dtype=None):
        n = shape[0]
        full = torch.randn((n * self.count, *shape[1:]), device=device, dtype=dtype)
        return full[self.index * n:(self.index + 1) * n]

    def randn_like(self, t):
        return self.randn(*t.shape, device=t.device, dtype=t.dtype)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch: this process's part all-reduced with the others'."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected a batch of at least 2 dimensions, got {x.dim()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable

        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.numel() // x.shape[1] * size()
        mean = all_reduce(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(dims)) / count
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach(), alpha=self.momentum)
                self.running_var.mul_(1 - self.momentum).add_(var.detach() * (count / (count - 1)),
                                                              alpha=self.momentum)
        return y


class DataParallel(OneRun):
    """One run over the processes of the group: a copy of its strategy with global-batch
    BatchNorm and this process's slice of the noise, trained on this process's slice of each
    global minibatch."""

    def __init__(self, runs: list[Run], phase: Phase, data: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__(runs, phase, data)  # the generators, seeded as the one-process run's
        self.index, self.count = rank(), size()
        if self.train.batch_size % self.count:
            raise UserError(f"--batch-size {self.train.batch_size} is not divisible by the {self.count} processes")
        self.model = copy.deepcopy(self.run.strategy)
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                if module.momentum is None:
                    raise UserError("a BatchNorm with cumulative averages (momentum None) cannot train data-parallel")
                module.__class__ = GlobalBatchNorm
        use_noise(self.model, RankSlice(self.index, self.count))

    def batch(self):
        x, y = self.data
        idx = torch.randint(x.shape[0], (self.train.batch_size,), device=self.run.device, generator=self.data_rng)
        part = self.train.batch_size // self.count
        idx = idx[self.index * part:(self.index + 1) * part]
        return x[idx], y[idx]

    def reduce_gradients(self, groups: dict[str, list[nn.Parameter]]) -> None:
        for params in groups.values():
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                continue
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.count
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()

    def reduce_logs(self, running: dict[str, Any]) -> dict[str, Any]:
        keys = sorted(running)
        if not keys:
            return running
        flat = torch.stack([running[k].reshape(()) for k in keys])
        dist.all_reduce(flat)
        return dict(zip(keys, (flat / self.count).unbind(0)))
