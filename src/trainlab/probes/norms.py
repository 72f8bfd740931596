"""Gradient and weight norms, global and per parameter tensor.

The per-tensor norms of a model come from one ``torch._foreach_norm`` call (one kernel
launch per device and dtype instead of a Python loop over the tensors); these probes run at
every step of the ``economy`` preset.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext

_NORM_DTYPES = (torch.float32, torch.float64)


def tensor_norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norm of each tensor (0-d tensors, one fused call; half precision in float32)."""
    return list(torch._foreach_norm([t if t.dtype in _NORM_DTYPES else t.float()
                                     for t in tensors]))


@lru_cache(maxsize=256)
def metric_names(prefix: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """``prefix/name`` for each name (cached: the same names come back every step)."""
    return tuple(f"{prefix}/{n}" for n in names)


def _norms(prefix: str, tensors: dict[str, torch.Tensor]) -> Measurement:
    if not tensors:
        return {}
    per = tensor_norms(list(tensors.values()))
    out: Measurement = {prefix: torch.linalg.vector_norm(torch.stack(per))}
    out.update(zip(metric_names(prefix, tuple(tensors)), per))
    return out


class GradNorm(Probe):
    """L2 norm of the gradient of this step, in total and for each parameter tensor."""

    name = "grad-norm"

    def measure(self, ctx: ProbeContext) -> Measurement:
        return _norms("grad_norm", ctx.grads())


class WeightNorm(Probe):
    """L2 norm of the parameters, in total and for each parameter tensor."""

    name = "weight-norm"

    def measure(self, ctx: ProbeContext) -> Measurement:
        return _norms("weight_norm", ctx.params())


class UpdateRatio(Probe):
    r"""Size of the last update relative to the weights it changed,
    :math:`\|\theta_k - \theta_{k-1}\| / \|\theta_{k-1}\|`, in total and per tensor (a common
    health signal: ~1e-3 for Adam), and the update norm ``update_norm``."""

    name = "update-ratio"
    needs_prev_params = True

    def measure(self, ctx: ProbeContext) -> Measurement:
        if ctx.prev_params is None:
            return {}
        now = ctx.params()
        if not now:
            return {}
        prev = [ctx.prev_params[n] for n in now]
        k = len(prev)
        # one fused norm call: |theta_k - theta_{k-1}| then |theta_{k-1}|, per tensor
        d, w = torch.stack(tensor_norms([*torch._foreach_sub(list(now.values()), prev),
                                         *prev])).split([k, k])
        out: Measurement = dict(zip(metric_names("update_ratio", tuple(now)),
                                    d.div(w.clamp_min(1e-30)).unbind()))
        total_d = torch.linalg.vector_norm(d)
        out["update_ratio"] = total_d / torch.linalg.vector_norm(w).clamp_min(1e-30)
        out["update_norm"] = total_d
        return out


PROBES.register("grad-norm", GradNorm, summary="global and per-tensor gradient L2 norm")
PROBES.register("weight-norm", WeightNorm, summary="global and per-tensor weight L2 norm")
PROBES.register("update-ratio", UpdateRatio,
                summary="update-to-weight norm ratio of the last step, global and per tensor")
