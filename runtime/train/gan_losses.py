"""The adversarial objectives of `training.gan`, on the discriminator's logits, and the
generator's exponential moving average.

With r = D(x) and f = D(G(z)) the logits of a real and a fake batch (σ the sigmoid):

    loss            discriminator minimizes                      generator minimizes
    non_saturating  -log σ(r)·(1-s) - log(1-σ(r))·s - log(1-σ(f))  -log σ(f)
    minimax         the same                                    log(1 - σ(f))
    hinge           relu(1 - r) + relu(1 + f)                   -f
    wgan_gp         f - r + λ (‖∇D(x̂)‖₂ - 1)²                   -f

each a mean over the batch; s is one-sided label smoothing (the real examples' target is
1 - s, the fakes' stays 0: Salimans et al. 2016), x̂ = εx + (1-ε)G(z) with ε ~ U[0, 1] per
example (Gulrajani et al. 2017). Every log σ is computed from logits (softplus), so no
loss saturates to inf in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def discriminator_loss(kind: str, real: Tensor, fake: Tensor, smoothing: float = 0.0) -> Tensor:
    """D's loss on the logits of a real and a (detached) fake batch, without wgan_gp's
    penalty (`gradient_penalty` adds it)."""
    real, fake = real.reshape(-1), fake.reshape(-1)
    if kind in ("non_saturating", "minimax"):
        target = torch.full_like(real, 1.0 - smoothing)
        return F.binary_cross_entropy_with_logits(
            real, target
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "wgan_gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def generator_loss(kind: str, fake: Tensor) -> Tensor:
    """G's loss on D's logits of its fakes (D's weights are not stepped by it)."""
    fake = fake.reshape(-1)
    if kind == "non_saturating":  # -log σ(f)
        return F.softplus(-fake).mean()
    if kind == "minimax":  # log(1 - σ(f)) = -softplus(f)
        return -F.softplus(fake).mean()
    if kind in ("hinge", "wgan_gp"):
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator: torch.Generator
) -> Tensor:
    """E[(‖∇ₓ̂ D(x̂)‖₂ - 1)²] on x̂ = εx + (1-ε)x̃, one ε ~ U[0, 1] per example, drawn from
    `generator` (seeded: the same run twice draws the same ε). The graph is kept
    (create_graph) so the penalty's own gradient reaches D's weights."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator).to(real.device, real.dtype)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = critic(mixed)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    norms = grad.reshape(grad.shape[0], -1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


@torch.no_grad()
def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    """average ← decay·average + (1-decay)·model for the parameters; buffers (batchnorm's
    running statistics) are copied, as the running statistics are already averages."""
    for a, p in zip(average.parameters(), model.parameters(), strict=True):
        a.lerp_(p, 1.0 - decay)
    for buf, src in zip(average.buffers(), model.buffers(), strict=True):
        buf.copy_(src)
