r"""LoRA adapter initialization: Init[A] (A random, B = 0) and Init[B] (A = 0, B random)
("The Impact of Initialization on LoRA Finetuning Dynamics", Hayou, Ghosh & Yu, NeurIPS 2024,
papers.md row 32)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice
from trainlab.init._apply import INITS, InitReport, LayerInit


def lora_init(model: nn.Module, *, generator: torch.Generator | None = None, select=None,
              batch=None, scheme: str = "lora-a", variant: str | None = None) -> InitReport:
    r"""Initialize every :class:`~trainlab.models.lora.LoRALinear` adapter in ``model``.

    ``variant="A"`` (Init[A], the PEFT default): :math:`A \sim \mathcal U(\pm 1/\sqrt{n})`
    (Kaiming-uniform with :math:`a = \sqrt 5`, as PEFT and ``nn.Linear`` do, :math:`n` = input
    width), :math:`B = 0`. ``variant="B"`` (Init[B]): :math:`A = 0`,
    :math:`B \sim \mathcal N(0, 1/r)`. Both give :math:`BA = 0`, so the adapted model computes
    the base model at step 0. The paper finds Init[A] tolerates larger learning rates
    (more efficient feature learning, at the cost of "internal instability") while Init[B] is
    more stable but leaves B under-trained. The base layers are not touched.

    Deviation: the paper states the inits as Gaussians with free variances; we use PEFT's
    scale for A and :math:`1/r` for B. ``select`` is ignored (all adapters are initialized).
    """
    del batch, select
    from trainlab.models.lora import LoRALinear

    variant = variant or ("B" if scheme.endswith("b") else "A")
    check_choice("variant", variant, ("A", "B"), owner="lora_init")
    layers = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, LoRALinear):
                continue
            if variant == "A":
                bound = 1.0 / math.sqrt(module.lora_a.shape[1])
                module.lora_a.uniform_(-bound, bound, generator=generator)
                module.lora_b.zero_()
            else:
                module.lora_a.zero_()
                module.lora_b.normal_(0.0, module.rank ** -0.5, generator=generator)
            layers.append(LayerInit(name))
    if not layers:
        raise ConfigError("lora init: the model has no LoRALinear adapters "
                          "(add them with trainlab.models.lora.add_lora)")
    return InitReport(scheme, tuple(layers))


INITS.register("lora-a", lora_init, papers=(32,),
               summary="LoRA Init[A]: A random (Kaiming-uniform), B = 0 (PEFT default)")
INITS.register("lora-b", lora_init, papers=(32,),
               summary="LoRA Init[B]: A = 0, B ~ N(0, 1/r)")
