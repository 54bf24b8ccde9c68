"""Where and in which precision a run trains: `device: auto` picks CUDA, then Apple's
MPS, then the CPU (a device asked for must exist); `precision: bf16|fp16` trains under
autocast, and fp16 on CUDA scales the loss with a GradScaler so small gradients do not
flush to zero."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ...compiler.errors import UsageError
from . import distributed as dist


def pick_device(wanted: str) -> torch.device:
    """auto: CUDA, then Apple's MPS, then the CPU; a device asked for must exist."""
    if wanted == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank() if dist.world_size() > 1 else 0)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "device cuda was asked for, but torch sees no CUDA GPU", hint="use --device cpu or auto"
        )
    if wanted == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise UsageError("device mps was asked for, but torch sees no Apple GPU")
    if wanted == "cuda":
        return torch.device("cuda", dist.local_rank() if dist.world_size() > 1 else 0)
    return torch.device(wanted)


class Precision:
    """fp32, or autocast in bf16/fp16; fp16 on CUDA scales the loss (GradScaler) so small
    gradients do not flush to zero."""

    def __init__(self, precision: str, device: torch.device) -> None:
        self.device_type = device.type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = None
        if precision == "fp16" and device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any] | None:
        return self.scaler.state_dict() if self.scaler else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
