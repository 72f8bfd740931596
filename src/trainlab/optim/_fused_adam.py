r"""One Adam/AdamW step over lists of tensors: torch's fused CPU kernel, or a public-API path.

The fast paths of AdEMAMix, diffGrad, Grokfast-AdamW and Riemannian Adam (on Euclidean
groups) hand an Adam step to ``torch._fused_adam_`` / ``torch._fused_adamw_``: one pass over
memory per tensor. Those are private torch functions, so they are used only when they exist,
the running torch is a version they were tested with (:data:`TESTED_TORCH`, major.minor) and
one tiny step on the tensors' device and dtype gives the public path's numbers (torch 2.1 to
2.3 have the kernels for CUDA only: on the CPU they raise ``NotImplementedError``);
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

import functools
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


def private_kernel_available(device: torch.device | str = "cpu",
                             dtype: torch.dtype = torch.float32) -> bool:
    """Whether ``torch._fused_adam_`` and ``torch._fused_adamw_`` exist, the running torch
    lies in :data:`TESTED_TORCH`, and both kernels run on ``device`` in ``dtype`` with the
    public path's numbers (checked once per device and dtype by :func:`_kernel_agrees`)."""
    low, high = TESTED_TORCH
    return (hasattr(torch, "_fused_adam_") and hasattr(torch, "_fused_adamw_")
            and low <= _torch_version() <= high and _kernel_agrees(str(device), dtype))


@functools.cache
def _kernel_agrees(device: str, dtype: torch.dtype) -> bool:
    """Two AMSGrad steps with weight decay of both private kernels on three numbers, against
    the public path; False where the kernel is missing for this device or dtype."""
    hyper = dict(lr=0.1, beta1=0.8, beta2=0.9, weight_decay=0.1, eps=1e-3, maximize=False,
                 amsgrad=True)
    for decoupled in (False, True):
        states = {}
        for impl in ("private", "public"):
            p, m, v, vmax = (torch.tensor(x, device=device, dtype=dtype) for x in (
                [1.0, -2.0, 0.5], [0.0] * 3, [0.0] * 3, [0.0] * 3))
            try:
                for t, g in enumerate(([0.3, -1.0, 2.0], [-0.5, 0.25, 1.0]), start=1):
                    adam_step_([p], [torch.tensor(g, device=device, dtype=dtype)], [m], [v],
                               [vmax], float(t), decoupled=decoupled, impl=impl, **hyper)
            except (NotImplementedError, RuntimeError, TypeError):
                return False
            states[impl] = torch.stack([p, m, v, vmax]).double().cpu()
        if not torch.allclose(states["private"], states["public"], rtol=1e-3, atol=1e-5):
            return False
    return True


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
            ``"auto"`` the kernel when :func:`private_kernel_available` on the tensors'
            device and dtype (else the public path, with one warning on the ``trainlab``
            logger).
    """
    check_choice("impl", impl, ("auto", "private", "public"), owner="adam_step_")
    if impl == "auto":
        where = (params[0].device, params[0].dtype) if params else (torch.device("cpu"),
                                                                    torch.float32)
        impl = "private" if private_kernel_available(*where) else "public"
        if impl == "public":
            warn_once(f"fused-adam-fallback-{where[0].type}-{where[1]}",
                      "torch %s: its private fused Adam kernel is missing, untested or "
                      "disagrees on %s %s; trainlab's Adam-based fast paths use public tensor "
                      "methods (slower, same numbers)", torch.__version__, where[0].type,
                      str(where[1]).removeprefix("torch."))
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
