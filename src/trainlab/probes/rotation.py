"""Layer rotation: distance and cosine distance of each layer's weights from their initial
values (Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful indicator of
generalization in deep networks?", 2019; papers.md row 56)."""

from __future__ import annotations

import operator
from functools import lru_cache

import torch

from trainlab.probes._probe import PROBES, Packed, PackedProbe, ProbeContext, Table
from trainlab.probes.norms import metric_names, param_norms


class Rotation(PackedProbe):
    r"""Per tensor: :math:`\|w_t - w_0\|` (``distance/<name>``) and the cosine distance
    :math:`1 - \langle w_t, w_0\rangle / (\|w_t\|\|w_0\|)` (``rotation/<name>``), the paper's
    layer-rotation measure; plus the global distance from initialization ``distance``.

    Only tensors with at least 2 dims get a rotation (the paper measures weight matrices and
    kernels; biases of zero init have no angle). The inner product comes from three norms,
    :math:`2\langle w_t, w_0\rangle = \|w_t\|^2 + \|w_0\|^2 - \|w_t - w_0\|^2`, which the
    step's shared norm call gives (:func:`~trainlab.probes.norms.param_norms`) instead of a
    Python loop over the layers.

    Deviations from the paper: the cosine distance per tensor is the measure the paper's title and
    abstract describe (its text was not re-read for this paragraph); tensors with fewer than 2 dims
    get none, and the global distance from initialization is this library's addition.
    """

    name = "rotation"
    uses_generator = False

    def measure_packed(self, ctx: ProbeContext) -> Packed:
        table = param_norms(ctx)
        if table is None or not (table.has("init_dist") and table.has("init")):
            return {}
        out: Packed = {"distance/*": table.entries(metric_names("distance", table.names),
                                                   "init_dist")}
        if table.totals is not None:  # the fused path: the total and the rotations from C
            out["distance"] = table.total("init_dist")
        else:
            out["distance"] = torch.linalg.vector_norm(table.init_dist)
        names = _rotation_names(ctx, table.names)
        if any(n is not None for n in names):
            # the values of the tensors with fewer than 2 dims are dropped
            out["rotation/*"] = (table.entries(names, "rotation") if table.has("rotation")
                                 else Table(names, cosine_distance(
                                     table.init_dist, table.weight, table.init)))
        return out


def cosine_distance(d: torch.Tensor, w: torch.Tensor, w0: torch.Tensor) -> torch.Tensor:
    r"""Per tensor :math:`1 - \cos = (\|w - w_0\|^2 - (\|w\| - \|w_0\|)^2) /
    (2 \|w\| \|w_0\|)`, from the vectors of norms ``d`` = :math:`\|w - w_0\|`, ``w``,
    ``w0``: as :math:`(d - e)(d + e) / \max((w + w) w_0, 10^{-30})` with :math:`e = w - w_0`
    (``w + w`` is :math:`2w` exactly), one torch operation each (the fused norm pass forms
    the same elements in C, :attr:`~trainlab.probes.norms.ParamNorms.rotation`)."""
    e = w - w0
    return (d - e).mul_(d + e).div_((w + w).mul_(w0).clamp_min_(1e-30))


def _rotation_names(ctx: ProbeContext, names: tuple[str, ...]) -> tuple[str | None, ...]:
    """``rotation/<name>`` for the tensors with at least 2 dims, None for the others; kept
    in the run's cache while the step's dict of parameters holds the same tensors under
    the same names (a monitor hands out the same dict of views while its parameters stay
    the same), so that a step reads no tensor's ``dim()``."""
    params = ctx.params()
    kept = ctx.run_cache.get("rotation_names")  # (tensors, names, result)
    if (kept is not None and kept[1] == names and len(kept[0]) == len(params)
            and all(map(operator.is_, kept[0], params.values()))):
        return kept[2]
    out = _matrix_names(names, tuple(params[n].dim() >= 2 for n in names))
    ctx.run_cache["rotation_names"] = (list(params.values()), names, out)
    return out


@lru_cache(maxsize=256)
def _matrix_names(names: tuple[str, ...], matrix: tuple[bool, ...]) -> tuple[str | None, ...]:
    return tuple(f"rotation/{n}" if m else None for n, m in zip(names, matrix))


PROBES.register("rotation", Rotation, ddp="replicated", papers=(56,),
                metrics=("distance", "rotation/*", "distance/*"),
                plot="curves", title="Layer rotation",
                summary="per-layer distance and cosine rotation from initialization")
