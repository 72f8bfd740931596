"""``torch.optim.Optimizer``'s methods without their ``torch._disable_dynamo`` wrapper while
``torch._dynamo`` is not imported: building or using an optimizer then does not import
torch's compiler stack.

torch wraps ``add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` in
``torch._disable_dynamo``, which imports ``torch._dynamo`` (and with it ``torch._inductor``:
1.5-4 s on the benchmark machine, most of the first step of a ``fused=True`` optimizer whose
kernels are replayed, see :mod:`trainlab.optim._kernel_replay`) at the first call, only to
keep dynamo from tracing into the method. While ``torch._dynamo`` is not in ``sys.modules``
nothing can be tracing, so the wrapped function (``__wrapped__``, set by the wrapper's
``functools.wraps``) is called directly: the same code, the same result. Once dynamo is
imported (by anyone), or on a torch release outside :data:`LAZY_DYNAMO_TORCH`, or where the
method has no ``__wrapped__``, the method runs as torch defines it (the public path).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch

from trainlab.optim._fused_adam import _torch_version

#: torch releases (major, minor) whose Optimizer methods were checked to be
#: ``torch._disable_dynamo`` wrappers around the plain method (lowest, highest)
LAZY_DYNAMO_TORCH = ((2, 13), (2, 13))


def optimizer_method(name: str) -> Callable[..., Any]:
    """``torch.optim.Optimizer.<name>``, unwrapped while that skips only a dynamo import."""
    method = getattr(torch.optim.Optimizer, name)
    low, high = LAZY_DYNAMO_TORCH
    if "torch._dynamo" in sys.modules or not low <= _torch_version() <= high:
        return method
    return getattr(method, "__wrapped__", method)
