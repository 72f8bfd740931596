r"""Neural ODEs on ``torchdiffeq`` with local (randomly sampled) solver-error regularization.

A neural ODE maps :math:`y(t_0) \mapsto y(t_1)` through :math:`\dot y = f_\theta(t, y)`,
solved by an adaptive Runge-Kutta method whose cost (function evaluations, NFE) grows with
how hard :math:`f_\theta` is to integrate. The local regularizer penalises the solver's own
error estimate at one random time instead of along the whole trajectory:

.. math::
    t_r \sim U(t_0, t_1), \quad y_r = \mathrm{odeint}(f_\theta, y(t_0), [t_0, t_r]), \quad
    R = \Delta t \cdot \mathrm{RMS}\!\left(\frac{\tilde e(y_r, \Delta t)}
        {\mathrm{atol} + \mathrm{rtol}\,\max(|y_r|, |y_r^+|)}\right),

where :math:`\tilde e` is the embedded error of one Dormand-Prince 5(4) step of size
:math:`\Delta t` from :math:`y_r` (to :math:`y_r^+`), and :math:`\Delta t` is the step the
adaptive solver accepted over :math:`t_r` while solving to it (recorded with torchdiffeq's
``callback_accept_step``; at :math:`t_r = 0`, its starting step), held constant. Training
minimises ``task_loss + weight * R``; evaluation solves without it.

Both the solve and the regularising step are torchdiffeq's: ``odeint`` for the trajectory
(and the accepted step), its Dormand-Prince tableau, step routine (``_runge_kutta_step``)
and starting-step rule (``_select_initial_step``) for :math:`R`. Those three are private
torchdiffeq names, imported from ``torchdiffeq._impl`` (checked for torchdiffeq 0.2.5);
nothing here integrates an ODE by its own code.

References:
    Pal, Edelman, Rackauckas. "Locally Regularized Neural Differential Equations: Some
    Black Boxes Were Meant to Remain Closed!", ICML 2023 (papers.md row 87): the unbiased
    local regulariser (random :math:`t_r`), error-estimate form, weight decay of the
    regulariser; the authors' Julia code (LocalRegNeuralDE.jl) for the error normalisation.

Deviations from the paper:
    The paper's step is Tsit5; torchdiffeq has no Tsit5, so this takes a Dormand-Prince 5(4)
    step (with the step size the Dormand-Prince integrator accepted over :math:`t_r`). Only
    the unbiased (uniform :math:`t_r`) variant and the error-estimate regulariser (not the
    stiffness estimate) are implemented. The paper's tolerances (1.4e-8 on MNIST) are left
    to the caller; defaults here are ``rtol = atol = 1e-6``.
"""

from __future__ import annotations

import torch
from torch import nn
from torchdiffeq import odeint

from trainlab.errors import ConfigError, TrainlabError, check_range
from trainlab.models._registry import MODELS

try:  # private torchdiffeq internals (0.2.5): the tableau, one RK step, the step-size rule
    from torchdiffeq._impl.dopri5 import _DORMAND_PRINCE_SHAMPINE_TABLEAU as DOPRI5
    from torchdiffeq._impl.misc import _PerturbFunc, _rms_norm, _select_initial_step
    from torchdiffeq._impl.rk_common import _runge_kutta_step
except ImportError as exc:  # pragma: no cover - depends on the installed torchdiffeq
    raise TrainlabError("trainlab.models.neural_ode needs torchdiffeq 0.2.5's internals "
                        f"(_runge_kutta_step, _select_initial_step): {exc}") from exc


class CountingField(nn.Module):
    """Wraps a vector field ``f(t, y)`` and counts its evaluations (``nfe``)."""

    def __init__(self, field: nn.Module):
        super().__init__()
        self.field = field
        self.nfe = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.field(t, y)


class _AcceptedStep(nn.Module):
    """The field, recording the size of each step torchdiffeq's adaptive solver accepts."""

    def __init__(self, field: nn.Module):
        super().__init__()
        self.field = field
        self.dt: torch.Tensor | None = None

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.field(t, y)

    def callback_accept_step(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.dt = dt.detach()


class NeuralODE(nn.Module):
    """``y(t0) -> y(t1)`` through ``dy/dt = field(t, y)`` solved by torchdiffeq.

    Args:
        field: an ``nn.Module`` ``(t, y) -> dy/dt``.
        t1: the end time (start 0). rtol, atol: the adaptive solver's tolerances.
        method: a torchdiffeq adaptive method (``"dopri5"`` default).
    """

    def __init__(self, field: nn.Module, *, t1: float = 1.0, rtol: float = 1e-6,
                 atol: float = 1e-6, method: str = "dopri5"):
        super().__init__()
        check_range("t1", t1, low=0.0, low_open=True, owner="NeuralODE")
        check_range("rtol", rtol, low=0.0, low_open=True, owner="NeuralODE")
        check_range("atol", atol, low=0.0, low_open=True, owner="NeuralODE")
        self.field = CountingField(field)
        self.t1, self.rtol, self.atol, self.method = t1, rtol, atol, method

    def forward(self, y0: torch.Tensor) -> torch.Tensor:
        t = torch.tensor([0.0, self.t1], dtype=y0.dtype)
        return odeint(self.field, y0, t, rtol=self.rtol, atol=self.atol, method=self.method)[-1]

    def nfe(self, y0: torch.Tensor) -> int:
        """Function evaluations of one solve from ``y0`` (no gradient)."""
        before = self.field.nfe
        with torch.no_grad():
            self(y0)
        return self.field.nfe - before

    def regularizer(self, y0: torch.Tensor, *, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """The local error regulariser ``R`` at one random time (see the module docstring)."""
        return local_error_regularizer(self.field, y0, t1=self.t1, rtol=self.rtol,
                                       atol=self.atol, generator=generator)


def embedded_error(field: nn.Module, t: torch.Tensor, y: torch.Tensor, dt: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y_next, error)`` of one Dormand-Prince 5(4) step of size ``dt`` from ``(t, y)``
    (torchdiffeq's step routine and tableau; differentiable in ``y`` and the field)."""
    func = _PerturbFunc(field)
    f0 = func(t, y)
    tab = DOPRI5
    y1, _, err, _ = _runge_kutta_step(func, y, f0, t, dt, t + dt, tab)
    return y1, err


def local_error_regularizer(field: nn.Module, y0: torch.Tensor, *, t1: float = 1.0,
                            rtol: float = 1e-6, atol: float = 1e-6,
                            generator: torch.Generator | None = None,
                            t_reg: float | None = None) -> torch.Tensor:
    """``R = dt * RMS(err / (atol + rtol * max(|y_r|, |y_r+|)))`` at ``t_r ~ U(0, t1)``.

    Args:
        field: the vector field ``(t, y) -> dy/dt``.
        y0: the initial state (any shape; a batch is one state).
        t1, rtol, atol: the solve's end time and tolerances.
        generator: draws ``t_r``. t_reg: a fixed ``t_r`` instead (tests, evaluation).

    Returns:
        the scalar ``R``, differentiable in the field's parameters and ``y0``.
    """
    check_range("t1", t1, low=0.0, low_open=True, owner="local_error_regularizer")
    if t_reg is None:
        t_reg = float(torch.rand((), generator=generator, dtype=torch.float64)) * t1
    check_range("t_reg", t_reg, low=0.0, high=t1, owner="local_error_regularizer")
    tt = torch.tensor(t_reg, dtype=y0.dtype)
    recorder = _AcceptedStep(field)
    if t_reg > 0:
        y = odeint(recorder, y0, torch.tensor([0.0, t_reg], dtype=y0.dtype), rtol=rtol,
                   atol=atol)[-1]
    else:
        y = y0
    if recorder.dt is not None:
        dt = recorder.dt
    else:  # t_r = 0: the solver's starting step
        with torch.no_grad():
            dt = _select_initial_step(_PerturbFunc(field), tt, y.detach(), 4, rtol, atol,
                                      _rms_norm)
    y_next, err = embedded_error(field, tt, y, dt.to(y.dtype))
    scale = atol + rtol * torch.maximum(y.abs(), y_next.abs())
    return dt.to(y.dtype) * (err / scale).pow(2).mean().sqrt()


class MLPField(nn.Module):
    """An autonomous field ``f(t, y) = W2 tanh(W1 y + b1) + b2`` (``t`` unused)."""

    def __init__(self, dim: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, width), nn.Tanh(), nn.Linear(width, dim))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


def neural_ode(input_shape: tuple[int, ...], num_outputs: int, *, width: int = 32,
               t1: float = 1.0, rtol: float = 1e-6, atol: float = 1e-6) -> NeuralODE:
    """Registry builder: a neural ODE with an MLP field on a flat state
    (``num_outputs`` must equal the input dimension)."""
    if len(input_shape) != 1 or num_outputs != input_shape[0]:
        raise ConfigError(f"The 'num_outputs' parameter of neural-ode must equal the input "
                          f"dimension of a 1-D input. Got {num_outputs} for input shape "
                          f"{tuple(input_shape)} instead.")
    check_range("width", width, low=1, owner="neural-ode")
    return NeuralODE(MLPField(input_shape[0], width), t1=t1, rtol=rtol, atol=atol)


MODELS.register("neural-ode", neural_ode, papers=(87,),
                summary="torchdiffeq neural ODE with a local solver-error regularizer (R)")
