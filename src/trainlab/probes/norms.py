"""Gradient and weight norms, global and per parameter tensor.

The per-tensor norms of a model come from one ``torch._foreach_norm`` call (one kernel
launch per device and dtype instead of a Python loop over the tensors); these probes run at
every step of the ``economy`` preset.
"""

from __future__ import annotations

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext

_NORM_DTYPES = (torch.float32, torch.float64)


def tensor_norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norm of each tensor (0-d tensors, one fused call; half precision in float32)."""
    return list(torch._foreach_norm([t if t.dtype in _NORM_DTYPES else t.float()
                                     for t in tensors]))


def _norms(prefix: str, tensors: dict[str, torch.Tensor]) -> Measurement:
    if not tensors:
        return {}
    per = tensor_norms(list(tensors.values()))
    out: Measurement = {prefix: torch.stack(per).square().sum().sqrt()}
    out.update({f"{prefix}/{n}": v for n, v in zip(tensors, per)})
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
        d = torch.stack(tensor_norms(torch._foreach_sub(list(now.values()), prev)))
        w = torch.stack(tensor_norms(prev))
        ratios = d / w.clamp_min(1e-30)
        total_d = d.square().sum().sqrt()
        out: Measurement = dict(zip((f"update_ratio/{n}" for n in now), ratios.unbind()))
        out["update_ratio"] = total_d / w.square().sum().sqrt().clamp_min(1e-30)
        out["update_norm"] = total_d
        return out


PROBES.register("grad-norm", GradNorm, summary="global and per-tensor gradient L2 norm")
PROBES.register("weight-norm", WeightNorm, summary="global and per-tensor weight L2 norm")
PROBES.register("update-ratio", UpdateRatio,
                summary="update-to-weight norm ratio of the last step, global and per tensor")
