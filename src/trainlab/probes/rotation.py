"""Layer rotation: distance and cosine distance of each layer's weights from their initial
values (Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful indicator of
generalization in deep networks?", 2019; papers.md row 56)."""

from __future__ import annotations

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


class Rotation(Probe):
    r"""Per tensor: :math:`\|w_t - w_0\|` (``distance/<name>``) and the cosine distance
    :math:`1 - \langle w_t, w_0\rangle / (\|w_t\|\|w_0\|)` (``rotation/<name>``), the paper's
    layer-rotation measure; plus the global distance from initialization ``distance``.

    Only tensors with at least 2 dims get a rotation (the paper measures weight matrices and
    kernels; biases of zero init have no angle).
    """

    name = "rotation"

    def measure(self, ctx: ProbeContext) -> Measurement:
        out: Measurement = {}
        sq = []
        for n, w in ctx.params().items():
            w0 = ctx.init_params[n]
            d = (w - w0).norm()
            sq.append(d.pow(2))
            out[f"distance/{n}"] = d
            if w.dim() >= 2:
                cos = torch.dot(w.reshape(-1), w0.reshape(-1)) / (w.norm() * w0.norm()).clamp_min(
                    1e-30)
                out[f"rotation/{n}"] = 1.0 - cos
        out["distance"] = torch.stack(sq).sum().sqrt()
        return out


PROBES.register("rotation", Rotation, papers=(56,),
                summary="per-layer distance and cosine rotation from initialization")
