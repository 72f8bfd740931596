"""Layer rotation: distance and cosine distance of each layer's weights from their initial
values (Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful indicator of
generalization in deep networks?", 2019; papers.md row 56)."""

from __future__ import annotations

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.norms import metric_names, tensor_norms


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
        # matrices first: their distances, then the other tensors', then |w| and |w0| of the
        # matrices, all from one fused norm call
        order = tuple(sorted(params, key=lambda n: params[n].dim() < 2))
        m = sum(params[n].dim() >= 2 for n in order)
        now = [params[n] for n in order]
        init = [ctx.init_params[n] for n in order]
        k = len(order)
        norms = tensor_norms([*torch._foreach_sub(now, init), *now[:m], *init[:m]])
        out: Measurement = dict(zip(metric_names("distance", order), norms[:k]))
        dist, w, w0 = torch.stack(norms).split([k, m, m])
        out["distance"] = torch.linalg.vector_norm(dist)
        if m:
            # 1 - cos = (|w - w0|^2 - (|w| - |w0|)^2) / (2 |w| |w0|)
            d, e = dist[:m], w - w0
            rot = (d - e).mul_(d + e).div_((2 * w).mul_(w0).clamp_min_(1e-30))
            out.update(zip(metric_names("rotation", order[:m]), rot.unbind()))
        return out


PROBES.register("rotation", Rotation, papers=(56,),
                summary="per-layer distance and cosine rotation from initialization")
