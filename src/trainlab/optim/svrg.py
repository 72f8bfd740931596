r"""SVRG: stochastic variance-reduced gradient (papers.md row 62)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.errors import ConfigError, check_range
from trainlab.optim._outer import check_joint_hypers
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.closure import Closure


def _single_tensor_svrg(params: list[torch.Tensor], grads: list[torch.Tensor],
                        snapshot_grads: list[torch.Tensor], full_grads: list[torch.Tensor], *,
                        lr: float) -> None:
    r"""One SVRG inner step per tensor, in place on ``params``:
    :math:`w \leftarrow w - \mathrm{lr}\,(\nabla f_i(w) - \nabla f_i(\tilde w) + \mu)`."""
    for p, g, gs, mu in zip(params, grads, snapshot_grads, full_grads):
        p.sub_(torch.sub(g, gs).add_(mu), alpha=lr)


class SVRG(torch.optim.Optimizer):
    r"""SVRG (Johnson & Zhang, 2013) as stated in "Optimization Methods for Large-Scale Machine
    Learning" (Bottou, Curtis & Nocedal, SIAM Review 2018, Algorithm 5.1; papers.md row 62).

    .. math::
        \mu = \nabla R_n(\tilde w) \text{ (full gradient at the snapshot, every }
        m \text{ steps)},\qquad
        w_{j+1} = w_j - \alpha\big(\nabla f_{i_j}(w_j) - \nabla f_{i_j}(\tilde w) + \mu\big)

    The snapshot :math:`\tilde w` is the iterate at which it is taken (the review's option (a):
    the outer iterate is the last inner iterate).

    Closure contract (:mod:`trainlab.optim.closure`): ``closure()`` computes the minibatch
    loss and gradients at the current parameter values; ``step`` calls it at the current
    weights and once more at the snapshot weights (same batch), then restores the weights.
    The full gradient :math:`\mu` comes from ``full_closure`` (same contract, over the whole
    training set) when given; without it the step's own closure is taken as the full
    objective (exact for full-batch closures; otherwise pass ``full_closure`` or call
    :meth:`take_snapshot` yourself). ``p.grad`` after ``step`` is the minibatch gradient at
    the pre-step weights. ``inner_steps`` and ``full_closure`` are read from the first param
    group; ``lr`` is per group.

    Args:
        params: parameters or param groups.
        lr: step size :math:`\alpha` (the review's analysis needs :math:`\alpha < 1/(4L)`).
        inner_steps: :math:`m`, steps between full-gradient snapshots (>= 1; Johnson & Zhang
            use :math:`m = 2n` for convex problems).
        full_closure: recomputes the full-data loss and gradients at the current weights.
        maximize: ascend instead.

    State keys: ``step``, ``snapshot`` (:math:`\tilde w`), ``full_grad`` (:math:`\mu`).

    Deviations from the paper: option (a) of the review's Algorithm 5.1 only (the other
    options for the outer iterate are not implemented); without ``full_closure`` the
    snapshot gradient is the step's own minibatch gradient (exact only for full-batch
    closures, as above); defaults ``lr = 1e-2`` and ``inner_steps = 100`` are this
    library's, not values from the review (which states the method and its step-size
    condition). Checked: the update and snapshot rule against the algorithm as restated
    above; the review's text was not re-read for this paragraph.
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # the snapshot schedule and the sign of the full gradient are shared by all groups
        super().add_param_group(param_group)
        check_joint_hypers(self, ("inner_steps", "maximize"))

    requires_closure = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, inner_steps: int = 100,
                 full_closure: Closure | None = None, *, maximize: bool = False):
        check_range("lr", lr, low=0.0, owner="SVRG")
        check_range("inner_steps", inner_steps, low=1, owner="SVRG")
        if full_closure is not None and not callable(full_closure):
            raise ConfigError(f"The 'full_closure' parameter of SVRG must be callable. "
                              f"Got {type(full_closure).__name__} instead.")
        self.full_closure = full_closure
        super().__init__(params, dict(lr=lr, inner_steps=int(inner_steps), maximize=maximize))

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _grads(self, closure: Callable[[], Any], maximize: bool) -> tuple[Any, list]:
        with torch.enable_grad():
            loss = closure()
        return loss, [None if p.grad is None
                      else (torch.neg(p.grad) if maximize else p.grad.detach().clone())
                      for p in self._params()]

    @torch.no_grad()
    def take_snapshot(self, full_closure: Closure) -> Any:
        """Set the snapshot to the current weights and :math:`\\mu` to the gradient computed
        by ``full_closure`` there (``p.grad`` is restored afterwards); returns its loss."""
        params = self._params()
        saved = [None if p.grad is None else p.grad.clone() for p in params]
        loss, grads = self._grads(full_closure, self.param_groups[0]["maximize"])
        for p, g, s in zip(params, grads, saved):
            state = self.state[p]
            state["snapshot"] = p.detach().clone()
            state["full_grad"] = torch.zeros_like(p) if g is None else g
            state.setdefault("step", 0)
            p.grad = s
        return loss

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        if closure is None:
            raise ConfigError("SVRG.step needs a closure that recomputes the minibatch loss "
                              "and gradients (see trainlab.optim.closure)")
        params = self._params()
        first = self.state[params[0]] if params else {}
        due = "snapshot" not in first or first["step"] % self.param_groups[0]["inner_steps"] == 0
        if due:
            self.take_snapshot(self.full_closure or closure)
        maximize = self.param_groups[0]["maximize"]
        loss, grads = self._grads(closure, maximize)
        current = [p.detach().clone() for p in params]
        for p in params:
            p.copy_(self.state[p]["snapshot"])
        _, snap_grads = self._grads(closure, maximize)
        for p, c, g in zip(params, current, grads):
            p.copy_(c)
            p.grad = None if g is None else (torch.neg(g) if maximize else g)
        by_param = dict(zip(map(id, params), zip(grads, snap_grads)))
        for group in self.param_groups:
            ps, gs, ss, mus = [], [], [], []
            for p in group["params"]:
                g, gsnap = by_param[id(p)]
                state = self.state[p]
                state["step"] += 1
                if g is None:
                    continue
                ps.append(p)
                gs.append(g)
                ss.append(torch.zeros_like(p) if gsnap is None else gsnap)
                mus.append(state["full_grad"])
            if ps:
                _single_tensor_svrg(ps, gs, ss, mus, lr=group["lr"])
        return loss


OPTIMIZERS.register("svrg", SVRG, papers=(62,),
                    summary="SVRG: minibatch gradient corrected by a periodic full gradient")
