"""Training on several processes: `dlc train --nproc N` relaunches itself under torch's
own launcher (`python -m torch.distributed.run`, i.e. torchrun), and each process joins
one DistributedDataParallel group: gloo on the CPU, NCCL on CUDA GPUs.

Each process takes every N-th example of the epoch's shared order, padded by wrapping
around as torch's DistributedSampler does, and a batch of global_batch / N; DDP averages
the gradients, so N processes step like one process with the global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import torch
from torch import nn


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run `dlc ARGV` in `nproc` processes under torchrun; its exit status."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "dlc.runtime.cli",
        *argv,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.run(cmd, env=env).returncode


def init(device: torch.device) -> None:
    import torch.distributed as td

    if td.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    td.init_process_group(backend=backend)


def finish() -> None:
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    init(device)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This process's share of an epoch's order, as DistributedSampler splits it."""
    n = len(order)
    total = -(-n // world) * world
    if total > n:  # pad by wrapping around, so every process takes as many steps
        order = torch.cat([order, order[: total - n]])
    return order[rank:total:world]


def mean(value: float, device: torch.device) -> float:
    """The mean of a number over all processes."""
    import torch.distributed as td

    t = torch.tensor([value], dtype=torch.float64, device=device)
    td.all_reduce(t)
    return float(t.item()) / world_size()
