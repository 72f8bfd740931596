r"""L-BFGS, torch's implementation under trainlab's registry (papers.md row 62)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch

from trainlab.errors import ConfigError, check_range
from trainlab.optim._outer import check_joint_hypers
from trainlab.optim._registry import OPTIMIZERS


class LBFGS(torch.optim.LBFGS):
    r"""Limited-memory BFGS as reviewed in "Optimization Methods for Large-Scale Machine
    Learning" (Bottou, Curtis & Nocedal, SIAM Review 2018, section 6.2; papers.md row 62):
    the two-loop recursion applies the inverse-Hessian approximation built from the last
    ``history_size`` pairs :math:`s_k = x_{k+1} - x_k`, :math:`y_k = g_{k+1} - g_k`, with the
    initial scaling :math:`H_0 = (s^\top y / y^\top y) I`.

    This is ``torch.optim.LBFGS`` (same algorithm, defaults, state and closure contract: the
    closure recomputes loss and gradients; ``step`` runs up to ``max_iter`` inner iterations)
    with one addition: it accepts several param groups. The step is joint over the
    concatenation of all parameters (as the method requires), so the hyper-parameters of the
    *first* group are used and the other groups' values are kept only for bookkeeping
    (schedulers, ``state_dict``). ``line_search_fn="strong_wolfe"`` is the robust choice;
    ``None`` (torch's default) takes fixed steps of size ``lr``. After ``step``, ``p.grad``
    holds the gradient of the *last* closure evaluation (torch's behaviour).

    State keys (torch's, on the first parameter): ``func_evals``, ``n_iter``, ``d``, ``t``,
    ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``.

    Deviations from the paper: the method is torch's L-BFGS, whose defaults (``lr = 1``,
    ``max_iter = 20``, ``history_size = 100``, no line search) and termination tests are
    torch's, not values taken from the review (its section 6.2 was not re-read for this
    paragraph). Addition: several param groups (one joint step, first group's
    hyper-parameters).
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # one two-loop recursion and line search over all groups: one value of each
        # hyperparameter, lr included
        super().add_param_group(param_group)
        check_joint_hypers(self, self.joint_hypers)

    joint_step = True
    requires_closure = True
    joint_hypers = "all"

    def __init__(self, params: Iterable[Any], lr: float = 1.0, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Literal["strong_wolfe"] | None = None):
        owner = "LBFGS"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("max_iter", max_iter, low=1, owner=owner)
        check_range("history_size", history_size, low=1, owner=owner)
        check_range("tolerance_grad", tolerance_grad, low=0.0, owner=owner)
        check_range("tolerance_change", tolerance_change, low=0.0, owner=owner)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ConfigError(f"The 'line_search_fn' parameter of LBFGS must be None or "
                              f"'strong_wolfe'. Got {line_search_fn!r} instead.")
        groups = list(params)
        first, rest = groups, []
        if groups and isinstance(groups[0], dict):
            first, rest = groups[:1], groups[1:]
        super().__init__(first, lr=lr, max_iter=max_iter, max_eval=max_eval,
                         tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                         history_size=history_size, line_search_fn=line_search_fn)
        for group in rest:
            self.add_param_group(group)
        self._params = [p for g in self.param_groups for p in g["params"]]

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        if closure is None:
            raise ConfigError("LBFGS.step needs a closure that recomputes the loss and "
                              "gradients (see trainlab.optim.closure)")
        groups = self.param_groups
        # torch's step accepts one group: show it the first group's hyper-parameters over all
        # parameters (so a closure's zero_grad still reaches every group)
        self.param_groups = [dict(groups[0], params=self._params)]
        try:
            return super().step(closure)
        finally:
            self.param_groups = groups


OPTIMIZERS.register("lbfgs", LBFGS, papers=(62,),
                    summary="L-BFGS (torch's two-loop recursion, optional strong-Wolfe search)")
