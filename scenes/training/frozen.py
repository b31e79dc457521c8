"""Evaluating a discriminator with detached parameters, so a GAN's two updates fold into one loss and one backward.

The harness makes one optimizer and calls `loss(model, batch)` once per step. A GAN's generator term goes through
`frozen_call(D, fake)`: its gradients reach the generator (through `fake`) and never the discriminator; the
discriminator's term sees `fake.detach()`: its gradients reach the discriminator only. The sum's gradients are
those of the two separate updates, applied simultaneously.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["frozen_call"]


def frozen_call(module: nn.Module, *inputs: torch.Tensor) -> Any:
    """`module(*inputs)` with every parameter detached: gradients reach the inputs and never the module."""
    detached = {name: parameter.detach() for name, parameter in module.named_parameters()}
    return functional_call(module, detached, inputs)
