"""Gradient and weight norms, global and per parameter tensor."""

from __future__ import annotations

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


def _norms(prefix: str, tensors: dict[str, torch.Tensor]) -> Measurement:
    if not tensors:
        return {}
    per = torch.stack([t.float().norm() if t.dtype != torch.float64 else t.norm()
                       for t in tensors.values()])
    out: Measurement = {prefix: per.pow(2).sum().sqrt()}
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
    r"""Size of this step's update relative to the weights, :math:`\|\Delta\theta\| /
    \|\theta\|`, in total and per tensor (a common health signal: ~1e-3 for Adam)."""

    name = "update-ratio"
    needs_prev_params = True

    def measure(self, ctx: ProbeContext) -> Measurement:
        if ctx.prev_params is None:
            return {}
        now = ctx.params()
        out: Measurement = {}
        total_d = total_w = 0.0
        for n, w in now.items():
            d2 = (w - ctx.prev_params[n]).pow(2).sum()
            w2 = ctx.prev_params[n].pow(2).sum()
            total_d, total_w = total_d + d2, total_w + w2
            out[f"update_ratio/{n}"] = d2.sqrt() / w2.sqrt().clamp_min(1e-30)
        out["update_ratio"] = torch.as_tensor(total_d).sqrt() / torch.as_tensor(
            total_w).sqrt().clamp_min(1e-30)
        out["update_norm"] = torch.as_tensor(total_d).sqrt()
        return out


PROBES.register("grad-norm", GradNorm, summary="global and per-tensor gradient L2 norm")
PROBES.register("weight-norm", WeightNorm, summary="global and per-tensor weight L2 norm")
PROBES.register("update-ratio", UpdateRatio,
                summary="update-to-weight norm ratio of the last step, global and per tensor")
