"""Sharpness (top Hessian eigenvalue) and the edge-of-stability ratio."""

from __future__ import annotations

import logging
from typing import Any

import torch

from trainlab.curvature import EigenResult, HessianOperator, block_warm_top, lanczos
from trainlab.curvature.training_hessian import training_hessian
from trainlab.errors import ConfigError, NotFiniteError, check_choice, check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext

LOG = logging.getLogger("trainlab")


def step_hessian(ctx: ProbeContext) -> HessianOperator:
    """The Hessian of this step's batch loss, built once per step and shared by the curvature
    probes.

    Randomness: the model keeps its mode (BatchNorm in training mode normalizes with the
    batch's statistics, as in the training step) and its stochastic layers (dropout) draw
    one fixed set of masks, replayed at every product
    (:class:`~trainlab.curvature.randomness.FixedRandomness`): the operator is the Hessian
    of the training loss for one draw of the masks, not of its average over masks. The
    masks come from the global RNG state at the measurement, which is given back unchanged.

    Products use double backward (2-3x cheaper than ``torch.func`` on small CPU models)
    through a gradient graph built once per step (``retain_graph``: later products are one
    backward pass each); a model whose operators lack a double backward falls back to
    forward-over-reverse on the first failure, with a warning on the ``trainlab`` logger
    (once per run).

    Under data-parallel training every product is averaged over the ranks (the Hessian of
    the global batch, :mod:`trainlab.train.distributed`)."""

    return ctx.cached("hessian_operator", lambda: _ranks_averaged(ctx, training_hessian(
        ctx.model, ctx.loss_fn, ctx.batch, run_cache=ctx.run_cache)))


def _ranks_averaged(ctx: ProbeContext, op: HessianOperator) -> Any:
    """``op`` itself in one process; under data-parallel training (``ctx.dist``) its
    products averaged over the ranks, each rank's ``op`` being the Hessian of its shard's
    mean loss, weighted by the shard's share of the examples
    (:class:`~trainlab.train.distributed.AveragedOperator`): the global batch's Hessian."""
    if ctx.dist is None:
        return op
    from trainlab.train.distributed import AveragedOperator

    return AveragedOperator(op, ctx.dist, ctx.shard_weight())


def eigen_metrics(key: str, eig: EigenResult, i: int = 0) -> Measurement:
    r"""Eigenvalue ``i`` of a Lanczos result with its accuracy: ``key`` when it converged,
    else ``key + "_unconverged"`` (a Ritz value: a lower bound of the eigenvalue it
    approximates when it is the top one, never stored as if exact); always
    ``key + "_residual"`` (the residual norm of the Ritz pair, :math:`\|Hy - \theta y\|`) and
    ``key + "_converged"`` (1.0 or 0.0)."""
    ok = bool(eig.converged[i])
    return {key if ok else f"{key}_unconverged": float(eig.values[i]),
            f"{key}_residual": float(eig.residuals[i]), f"{key}_converged": float(ok)}


GAP_TOL = 0.03
MIN_ITER = 8
WARM_WEIGHT = 0.3
METHODS = ("lanczos", "block-warm")
BLOCK = 3
BLOCK_EIG_TOL = 1e-3


def mixed_start(warm: torch.Tensor | None, dim: int, dtype: torch.dtype, device: torch.device,
                generator: torch.Generator | None) -> torch.Tensor:
    """The Lanczos start of a warm-started measurement: ``WARM_WEIGHT`` (0.3) times the unit
    warm vector plus a unit standard-normal draw from ``generator`` (the draw alone when
    there is no warm vector).

    A warm vector alone lets the previous top eigenvector decide: when the top eigenvector
    has moved (or swapped with the second), the Krylov space from it can miss the new top
    direction while a lower eigenvalue converges with a small residual. The random part has a
    nonzero component along every eigenvector with probability 1; the warm part is kept
    small so that a stale direction (e.g. the new second eigenvector) does not dominate the
    first Krylov vectors and delay the top one (on the MNIST-1D MLP of
    ``benchmarks/sharpness_warm.py``, weight 1 still missed the top at 8 products where 0.3
    did not)."""
    r = torch.randn(dim, generator=generator, dtype=dtype, device=device)
    r = r / r.norm()
    if warm is None:
        return r
    w = warm.detach().to(dtype=dtype, device=device)
    return WARM_WEIGHT * w / w.norm() + r


class Sharpness(Probe):
    r"""Top eigenvalue :math:`\lambda_{max}` of the Hessian of the batch loss, by Lanczos on
    Hessian-vector products (double backward through a retained graph, see
    :func:`step_hessian`), warm-started from the
    previous measurement's eigenvector so that a slowly moving top eigenvector costs a few
    products per measurement.

    Also reports ``eos_ratio`` :math:`= \lambda_{max}\,\eta / 2`: gradient descent with
    learning rate :math:`\eta` is stable on a quadratic only while this is below 1; at the
    edge of stability it hovers at 1 ("Gradient descent on neural networks typically occurs at
    the edge of stability", Cohen et al. 2021; "A Loss Curvature Perspective on Training
    Instability in Deep Learning", Gilmer et al. 2022; papers.md rows 65 and 10). For
    adaptive optimizers, :func:`trainlab.curvature.preconditioned_sharpness` gives the
    threshold that applies to them.

    The Hessian operator (:func:`step_hessian`) is shared with the other curvature probes of
    the same step.

    Every value comes with its Lanczos residual (``sharpness_residual``) and a converged
    flag (``sharpness_converged``); a value that did not converge within ``max_iter``
    products is stored as ``sharpness_unconverged`` (a lower bound of the top eigenvalue),
    never as ``sharpness`` (see :func:`eigen_metrics`), and no ``eos_ratio`` is derived from
    it. When a Hessian-vector product is not finite (NaN/Inf, e.g. a run about to diverge)
    the measurement is ``sharpness = NaN`` with ``sharpness_converged = 0`` and the reason in
    the run's probe notes, and training goes on.

    What "converged" guarantees. A small residual alone only proves that the Ritz value is
    close to *some* eigenvalue: a warm start near the (new) second eigenvector, or a cold
    start in a cluster, can converge to a lower eigenvalue first. So the start is never the
    warm vector alone (:func:`mixed_start`: a random draw from the probe's generator plus
    0.3 times the warm vector), and a value is flagged converged only when (1) the residual
    is at most ``tol`` times the value, so an eigenvalue of the batch Hessian lies within
    ``tol`` (relative) of it (exact, up to rounding); (2) the residual is at most
    ``gap_tol`` times the distance to the next Ritz value, so the Ritz vector is resolved
    from its neighbours (Davis-Kahan with Ritz values standing in for the spectrum: an
    estimate) and the eigenvalue error is about ``gap_tol * tol`` relative; (3) the Krylov
    dimension is at least ``min_iter``, from a start with a random component. (1)-(3) do
    not *prove* that the eigenvalue is the largest one (no Krylov method can without the
    spectrum): a top eigenvalue that a random start does not surface within the products
    used is still missed, with a probability that falls quickly with ``min_iter``. On the
    MNIST-1D MLP of ``benchmarks/sharpness_warm.py`` (every 10 steps, 150 steps) every
    converged value was within 1e-5 of a tight reference, where the residual test alone had
    stored errors of 2e-2 to 2e-1. Under dropout the Hessian is that of one fixed draw of the masks
    (:func:`step_hessian`).

    Deviations from the papers: the sharpness is that of this step's batch loss (the papers track
    the training loss on the full set or a fixed subset; pass a larger batch for that), a Lanczos
    estimate with its residual; under dropout the Hessian is that of one fixed draw of the masks;
    ``eos_ratio`` uses gradient descent's threshold :math:`2/\eta` (for momentum or adaptive methods
    see :func:`trainlab.curvature.preconditioned_sharpness`). The papers' measurement protocols were
    not re-read for this paragraph.

    Args:
        every: cadence.
        max_iter: Krylov dimension cap per measurement (default 100, as
            :func:`~trainlab.curvature.lanczos`).
        tol: Lanczos residual tolerance relative to the eigenvalue (default 1e-2: the
            eigenvalue error is about the residual squared over the spectral gap, so about
            1e-4 relative for a well-separated top eigenvalue).
        gap_tol: a value counts as converged only when its residual is also at most
            ``gap_tol`` times the distance to the next Ritz value (default 0.03; see above
            and :func:`~trainlab.curvature.lanczos`'s ``gap_tol``).
        min_iter: minimum Krylov dimension before any value counts as converged (default
            8, capped at ``max_iter``): the products a random start needs to surface the top
            eigenvalue on the benchmark's MLP.
        eig_tol: also stop once the gap-theorem estimate of the *eigenvalue* error
            (residual² / distance to the next Ritz value) is below ``eig_tol`` relative
            (:func:`~trainlab.curvature.lanczos`'s ``eig_tol``); ``None`` (default): the
            residual test alone. A cheaper, estimated stop: the gap comes from Ritz values;
            ``gap_tol`` and ``min_iter`` still apply. With ``method="block-warm"`` it is
            the stop of the warm measurements (default there 1e-3).
        method: ``"lanczos"`` (default, above) or ``"block-warm"``: a cheaper estimate
            for measurements at short intervals (see below).
        block: with ``method="block-warm"``, the number of previous Ritz vectors kept
            (default 3, ``>= 1``); rejected with ``"lanczos"``.

    ``method="block-warm"``: the first measurement (and any whose kept vectors do not fit
    the operator) is the Lanczos measurement above with ``tol``, ``gap_tol`` and
    ``min_iter``, asking for the top ``block`` pairs; each later one starts from the
    previous measurement's top-``block`` Ritz vectors (:func:`~trainlab.curvature.block_warm_top`:
    Rayleigh-Ritz on their span, then one product per step on the top Ritz pair's
    residual) and stops as soon as the estimated eigenvalue error
    :math:`\min(r_1, r_1^2 / (\theta_1 - \theta_2 - r_2))` is at most ``eig_tol`` relative
    (an eigenvalue lies within the residual :math:`r_1`; the second term is the
    Kato-Temple bound with the second Ritz value plus its residual standing in for
    :math:`\lambda_2`, used when it is below :math:`\theta_1`;
    :func:`~trainlab.curvature.solvers.block_warm.top_error_estimate`), recorded as
    ``sharpness_error_estimate``. There is no ``min_iter``
    and no random component in these starts: a new top eigenvector far from the previous
    span can be missed (a value below the top flagged converged). On the MNIST-1D MLP of
    ``benchmarks/sharpness_warm.py`` measured every step, ``block=3`` needed a median of
    4-5 products with every error below 1e-3 (step's batch and fixed batch, 100
    measurements each); ``block=2`` needed 3-4 but, in one of three such runs and every
    5 steps, stored values up to 22% below the top eigenvalue as converged (the top
    eigenvector came from outside the kept pair), hence the default of 3. Measured every
    50 steps it costs as many products as the default method or nearly (7-8): the
    option is for measurements every step or every few steps (``docs/performance.md``,
    section ``sharpness_warm``).
    """

    name = "sharpness"

    def __init__(self, every: int = 1, max_iter: int = 100, tol: float = 1e-2,
                 eig_tol: float | None = None, gap_tol: float = GAP_TOL,
                 min_iter: int = MIN_ITER, method: str = "lanczos", block: int | None = None):
        super().__init__(every)
        check_range("max_iter", max_iter, low=1, owner="sharpness")
        check_range("tol", tol, low=0.0, low_open=True, owner="sharpness")
        if eig_tol is not None:
            check_range("eig_tol", eig_tol, low=0.0, low_open=True, owner="sharpness")
        check_range("gap_tol", gap_tol, low=0.0, low_open=True, owner="sharpness")
        check_range("min_iter", min_iter, low=1, owner="sharpness")
        check_choice("method", method, METHODS, owner="sharpness")
        if block is not None and method != "block-warm":
            raise ConfigError("The 'block' parameter of sharpness needs method='block-warm'; "
                              f"got method={method!r}.")
        if method == "block-warm":
            block = BLOCK if block is None else block
            check_range("block", block, low=1, high=max_iter, owner="sharpness")
        self.min_iter, self.method, self.block = min_iter, method, block
        self.max_iter, self.tol, self.eig_tol, self.gap_tol = max_iter, tol, eig_tol, gap_tol
        self._v: torch.Tensor | None = None

    def measure(self, ctx: ProbeContext) -> Measurement:
        op = step_hessian(ctx)
        estimate = None
        try:
            if self.method == "block-warm" and self._fits(op.dim):
                res, estimate = block_warm_top(
                    op, self._v, max_iter=min(self.max_iter, op.dim),
                    eig_tol=BLOCK_EIG_TOL if self.eig_tol is None else self.eig_tol)
            else:
                res = self._lanczos(ctx, op)
        except NotFiniteError as exc:  # a diverging run: NaN is the result, recorded as such
            ctx.note(self.name, str(exc))
            return {"sharpness": float("nan"), "sharpness_converged": 0.0}
        self._v = (res.vectors if self.method == "block-warm" else res.vectors[:, 0]
                   ).detach().clone()
        out = eigen_metrics("sharpness", res)
        out["sharpness_matvecs"] = float(res.matvecs)
        if estimate is not None:
            out["sharpness_error_estimate"] = estimate
        if ctx.lr is not None and "sharpness" in out:
            out["eos_ratio"] = float(res.values[0]) * ctx.lr / 2.0
        return out

    def _fits(self, dim: int) -> bool:
        """The kept block can warm-start an operator of size ``dim``."""
        v = self._v
        return v is not None and v.ndim == 2 and v.shape == (dim, self.block)

    def _lanczos(self, ctx: ProbeContext, op: Any) -> EigenResult:
        """The default measurement (for ``"block-warm"``: its cold start, top ``block``
        pairs, the top one tested as usual)."""
        dim = op.dim
        warm = self._v if self._v is not None and self._v.numel() == dim else None
        v0 = mixed_start(warm, dim, op.dtype, op.device, ctx.generator)
        k = min(self.block or 1, dim)
        return lanczos(op, k=k, tol=self.tol, max_iter=max(k, min(self.max_iter, dim)), v0=v0,
                       generator=ctx.generator, eig_tol=self.eig_tol, gap_tol=self.gap_tol,
                       min_iter=self.min_iter)

    def state_dict(self) -> dict[str, Any]:
        return {"v": self._v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._v = state.get("v")


PROBES.register("sharpness", Sharpness, ddp="reduced", papers=(10, 65),
                metrics=("sharpness", "eos_ratio", "sharpness_matvecs", "sharpness_residual",
                         "sharpness_converged", "sharpness_unconverged",
                         "sharpness_error_estimate"),
                plot="edge-of-stability", title="Sharpness and the edge of stability",
                compare=("sharpness", "eos_ratio"),
                summary="top Hessian eigenvalue by warm-started Lanczos, and lr*sharpness/2")
