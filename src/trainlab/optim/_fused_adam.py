r"""One Adam/AdamW step over lists of tensors: torch's fused CPU kernel, or a public-API path.

The fast paths of AdEMAMix, diffGrad, Grokfast-AdamW and Riemannian Adam (on Euclidean
groups) hand an Adam step to ``torch._fused_adam_`` / ``torch._fused_adamw_``: one pass over
memory per tensor. Those are private torch functions, so they are used only when they exist
and the running torch is a version they were tested with (:data:`TESTED_TORCH`, major.minor);
otherwise :func:`adam_step_` runs the same step with public tensor methods (slower, same
numbers to float rounding) and says so once on the ``trainlab`` logger. A torch upgrade thus
slows trainlab down instead of breaking it; ``impl=`` picks a path explicitly (tests run both).

The step, for each tensor (``t`` = the step count, already incremented, as in torch):

.. math::
    g \leftarrow \pm g\ (+\,\lambda p \text{ for Adam}),\quad
    p \leftarrow p(1 - \eta\lambda) \text{ for AdamW},\quad
    m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\\
    \hat v = \max(\hat v, v) \text{ (AMSGrad)},\quad
    p \leftarrow p - \frac{\eta}{1-\beta_1^t}\,\frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from trainlab.errors import check_choice
from trainlab.log import warn_once

#: torch releases (major, minor) whose private fused Adam kernels trainlab was tested against
TESTED_TORCH = ((2, 1), (2, 14))


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def private_kernel_available() -> bool:
    """Whether ``torch._fused_adam_`` and ``torch._fused_adamw_`` exist and the running torch
    lies in :data:`TESTED_TORCH`."""
    low, high = TESTED_TORCH
    return (hasattr(torch, "_fused_adam_") and hasattr(torch, "_fused_adamw_")
            and low <= _torch_version() <= high)


def adam_step_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
               exp_avgs: Sequence[torch.Tensor], exp_avg_sqs: Sequence[torch.Tensor],
               max_exp_avg_sqs: Sequence[torch.Tensor], step: float, *, lr: float,
               beta1: float, beta2: float, weight_decay: float, eps: float, maximize: bool,
               amsgrad: bool = False, decoupled: bool = False,
               impl: Literal["auto", "private", "public"] = "auto") -> None:
    """One Adam (``decoupled=False``, L2 decay) or AdamW step in place on every tensor of
    ``params`` and the moment lists; ``grads`` are read only.

    Args:
        step: the step count ``t`` (>= 1) of every tensor.
        impl: ``"private"`` torch's fused kernel, ``"public"`` public tensor methods,
            ``"auto"`` the kernel when :func:`private_kernel_available` (else the public
            path, with one warning on the ``trainlab`` logger).
    """
    check_choice("impl", impl, ("auto", "private", "public"), owner="adam_step_")
    if impl == "auto":
        impl = "private" if private_kernel_available() else "public"
        if impl == "public":
            warn_once("fused-adam-fallback",
                      "torch %s: its private fused Adam kernel is missing or untested; "
                      "trainlab's Adam-based fast paths use public tensor methods (slower, "
                      "same numbers)", torch.__version__)
    if impl == "private":
        kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        t = torch.tensor(float(step))
        kernel(list(params), list(grads), list(exp_avgs), list(exp_avg_sqs),
               list(max_exp_avg_sqs) if amsgrad else [], [t] * len(params), amsgrad=amsgrad,
               lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps,
               maximize=maximize)
        return
    bc1 = 1.0 - beta1**step
    bc2_sqrt = (1.0 - beta2**step) ** 0.5
    maxes = list(max_exp_avg_sqs) if amsgrad else [None] * len(params)
    with torch.no_grad():
        for p, g, m, v, vmax in zip(params, grads, exp_avgs, exp_avg_sqs, maxes):
            g = -g if maximize else g
            if weight_decay:
                if decoupled:
                    p.mul_(1.0 - lr * weight_decay)
                else:
                    g = g + weight_decay * p
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            if vmax is not None:
                torch.maximum(vmax, v, out=vmax)
                second = vmax
            else:
                second = v
            denom = second.sqrt().div_(bc2_sqrt).add_(eps)
            p.addcdiv_(m, denom, value=-lr / bc1)
