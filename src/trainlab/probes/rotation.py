"""Layer rotation: distance and cosine distance of each layer's weights from their initial
values (Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful indicator of
generalization in deep networks?", 2019; papers.md row 56)."""

from __future__ import annotations

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.norms import tensor_norms


class Rotation(Probe):
    r"""Per tensor: :math:`\|w_t - w_0\|` (``distance/<name>``) and the cosine distance
    :math:`1 - \langle w_t, w_0\rangle / (\|w_t\|\|w_0\|)` (``rotation/<name>``), the paper's
    layer-rotation measure; plus the global distance from initialization ``distance``.

    Only tensors with at least 2 dims get a rotation (the paper measures weight matrices and
    kernels; biases of zero init have no angle). The inner product comes from the three
    norms, :math:`2\langle w_t, w_0\rangle = \|w_t\|^2 + \|w_0\|^2 - \|w_t - w_0\|^2`, so
    one fused norm call per list of tensors replaces a Python loop over the layers.
    """

    name = "rotation"

    def measure(self, ctx: ProbeContext) -> Measurement:
        params = ctx.params()
        if not params:
            return {}
        now = list(params.values())
        init = [ctx.init_params[n] for n in params]
        dist = tensor_norms(torch._foreach_sub(now, init))
        out: Measurement = {f"distance/{n}": d for n, d in zip(params, dist)}
        out["distance"] = torch.stack(dist).square().sum().sqrt()
        mats = [i for i, w in enumerate(now) if w.dim() >= 2]
        if mats:
            d = torch.stack([dist[i] for i in mats])
            w = torch.stack(tensor_norms([now[i] for i in mats]))
            w0 = torch.stack(tensor_norms([init[i] for i in mats]))
            # 1 - cos = (|w - w0|^2 - (|w| - |w0|)^2) / (2 |w| |w0|)
            rot = (d.square() - (w - w0).square()) / (2 * w * w0).clamp_min(1e-30)
            names = list(params)
            out.update({f"rotation/{names[i]}": r for i, r in zip(mats, rot.unbind())})
        return out


PROBES.register("rotation", Rotation, papers=(56,),
                summary="per-layer distance and cosine rotation from initialization")
