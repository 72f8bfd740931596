"""Edge of stability in the quadratic model (row 65): the check separates a run that sharpens
to 2/lr from one that does not, and the quick run's numbers stay in the claim's range."""

from __future__ import annotations

import numpy as np

from trainlab.phenomena.agarwala2023_quadratic_eos import QuadraticEdgeOfStability
from trainlab.theory.quadratic_regression import Trajectory


def _traj(ntk, hess_end, loss_end, lr=1.0):
    steps = np.arange(len(ntk))
    loss = np.geomspace(1.0, loss_end, len(ntk))
    hessian = np.array(ntk, dtype=float)
    hessian[-1] = hess_end
    return Trajectory(lr, steps, loss, np.array(ntk, dtype=float), hessian, False)


def test_check_on_hand_made_runs():
    const = _traj([1.0, 1.0, 1.0], 1.0, 1e-20)
    eos = {"runs": [_traj([1.0, 1.8, 2.01, 1.99], 1.99, 1e-20)] * 3, "controls": [const]}
    assert all(c.passed for c in QuadraticEdgeOfStability().check(eos))
    flat = {"runs": [_traj([1.0, 1.1, 1.2], 1.2, 1e-20)] * 3, "controls": [const]}
    assert [c.passed for c in QuadraticEdgeOfStability().check(flat)] == [False, False, True,
                                                                          True]
