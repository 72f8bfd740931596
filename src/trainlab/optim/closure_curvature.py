"""A contract closure's curvature (Hessian or GGN) as a matvec on flat vectors, for the
curvature-aware methods of issue 6 (polynomial preconditioning, DASA, AEPG, regularized
Newton)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from trainlab.errors import ConfigError, check_choice
from trainlab.optim.saddle_free_newton import ClosureHessian

Matvec = Callable[[torch.Tensor], torch.Tensor]
CURVATURES = ("hessian", "ggn")


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One flat vector from a list of tensors."""
    return torch.cat([t.reshape(-1) for t in tensors])


def split_like(vec: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The inverse of :func:`flat`: one tensor per parameter, shaped like it."""
    parts = torch.split(vec, [p.numel() for p in params])
    return [c.view_as(p) for c, p in zip(parts, params)]


def curvature_matvec(closure: Callable[[], torch.Tensor], params: list[torch.Tensor],
                     kind: str, owner: str) -> Matvec:
    """``v -> B v`` at the parameters' current values, ``B`` the ``"hessian"`` (the closure's
    exact ``hvp``, else finite differences of closure gradients) or the ``"ggn"`` (needs the
    closure's ``ggn_vp``: :func:`trainlab.optim.loss_closure.make_closure`).

    A :class:`~trainlab.optim.loss_closure.LossClosure` over the same parameters gives its
    operator, built once: call this again after moving the parameters."""
    check_choice("curvature", kind, CURVATURES, owner=owner)
    operator = getattr(closure, "operator", None)
    same = [id(p) for p in getattr(closure, "params", ())] == [id(p) for p in params]
    if operator is not None and same:
        return operator(kind).matvec  # one operator for the whole step (built once)
    if kind == "hessian":
        return ClosureHessian(closure, params).matvec
    ggn_vp = getattr(closure, "ggn_vp", None)
    if ggn_vp is None:
        raise ConfigError(f"{owner}(curvature='ggn') needs a closure with ggn_vp "
                          "(trainlab.optim.loss_closure.make_closure)")

    def matvec(v: torch.Tensor) -> torch.Tensor:
        return flat([t.detach() for t in ggn_vp(split_like(v, params))])

    return matvec


def rademacher(n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A vector of ``n`` independent signs (+1/-1), dtype and device of ``like``."""
    bits = torch.randint(0, 2, (n,), generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)
