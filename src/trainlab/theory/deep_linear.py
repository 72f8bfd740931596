r"""Exact learning dynamics of deep linear networks (Saxe, McClelland & Ganguli, 2014).

"Exact solutions to the nonlinear dynamics of learning in deep linear neural networks",
ICLR 2014, papers.md row 1.

Setting: whitened inputs (:math:`\Sigma^{xx} = I`), input-output correlation
:math:`\Sigma^{yx} = U S V^T`, and a *decoupled* initialization in which every layer is
diagonal in the teacher's singular bases. Each singular mode :math:`\alpha` then evolves on
its own. Write :math:`u` for the mode's strength in the input-output map (the product of the
per-layer scalars) and :math:`D` for the number of weight matrices. With equal (balanced)
per-layer scalars, gradient flow with time constant :math:`\tau = 1/\text{lr}` gives

.. math::
    \tau \dot u = D\, u^{2 - 2/D} (s - u),

which for :math:`D = 2` is :math:`\tau \dot u = 2u(s-u)`, solved by the sigmoid

.. math::
    u(t) = \frac{s\, e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0},
    \qquad t(u_0 \to u_f) = \frac{\tau}{2s} \ln\frac{u_f (s - u_0)}{u_0 (s - u_f)}.

Time is in optimizer steps when :math:`\tau = 1/\text{lr}` and the loss is
:math:`\tfrac12\,\text{mean}\,\|y - W x\|^2` on whitened inputs (the
``teacher-linear`` task's convention): then :math:`s` is the teacher's singular value.

:func:`mode_strength_discrete` iterates the *exact* gradient-descent map of one balanced mode,
so simulations can be compared with no gradient-flow error at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.integrate import quad, solve_ivp

from trainlab.errors import ConfigError, check_range


def _check_mode(s: float, u0: float, owner: str) -> None:
    check_range("s", s, low=0.0, low_open=True, owner=owner)
    check_range("u0", u0, low=0.0, high=s, low_open=True, high_open=True, owner=owner)


def mode_strength(t: np.ndarray | float, s: float, u0: float, tau: float = 1.0) -> np.ndarray:
    r"""Strength :math:`u(t)` of one mode of a two-layer (one hidden layer) linear network.

    :math:`u(t) = s e^{2st/\tau} / (e^{2st/\tau} - 1 + s/u_0)` (Saxe et al. 2014, eq. 7): a
    sigmoid that stays near :math:`u_0` for about :math:`(\tau/2s)\ln(s/u_0)` and then rises
    to :math:`s`.

    Deviations from the paper: the formulas are the paper's as restated above (not re-read line by
    line for this paragraph); the deep (:math:`D > 2`) dynamics assume equal per-layer scalars
    (balanced), and the time unit is optimizer steps through :math:`\tau = 1/\text{lr}` under the
    loss convention stated above.

    Args:
        t: time(s), in the units of ``tau`` (steps when ``tau = 1/lr``).
        s: the mode's singular value in :math:`\Sigma^{yx}`, > 0.
        u0: initial strength, in (0, s).
        tau: time constant, > 0.
    """
    _check_mode(s, u0, "mode_strength")
    check_range("tau", tau, low=0.0, low_open=True, owner="mode_strength")
    t = np.asarray(t, dtype=np.float64)
    # Divide through by e^{2st/tau} so large t neither overflows nor loses precision.
    decay = np.exp(-2.0 * s * t / tau)
    return s / (1.0 - decay + (s / u0) * decay)


def learning_time(s: float, u0: float, uf: float, tau: float = 1.0) -> float:
    r"""Time for a two-layer mode to go from ``u0`` to ``uf``:
    :math:`t = \frac{\tau}{2s}\ln\frac{u_f(s-u_0)}{u_0(s-u_f)}` (Saxe et al. 2014, eq. 8).

    Deviations from the paper: the formulas are the paper's as restated above (not re-read line by
    line for this paragraph); the deep (:math:`D > 2`) dynamics assume equal per-layer scalars
    (balanced), and the time unit is optimizer steps through :math:`\tau = 1/\text{lr}` under the
    loss convention stated above.

    Raises:
        ConfigError: unless ``0 < u0 < s`` and ``0 < uf < s``.
    """
    _check_mode(s, u0, "learning_time")
    check_range("uf", uf, low=0.0, high=s, low_open=True, high_open=True, owner="learning_time")
    return tau / (2.0 * s) * math.log(uf * (s - u0) / (u0 * (s - uf)))


def _deep_rate(s: float, depth: int) -> Callable[[float], float]:
    power = 2.0 - 2.0 / depth
    return lambda u: depth * u**power * (s - u)


def deep_learning_time(s: float, u0: float, uf: float, depth: int, tau: float = 1.0) -> float:
    r"""Time for a balanced mode of a depth-``depth`` linear network to go from ``u0`` to
    ``uf``: :math:`t = \tau \int_{u_0}^{u_f} du / (D u^{2-2/D}(s-u))` (Saxe et al. eq. 17 in
    integral form), by adaptive quadrature. ``depth`` counts weight matrices (``D = 2``:
    one hidden layer, which reduces to :func:`learning_time`)."""
    check_range("depth", depth, low=1, owner="deep_learning_time")
    _check_mode(s, u0, "deep_learning_time")
    check_range("uf", uf, low=0.0, high=s, low_open=True, high_open=True,
                owner="deep_learning_time")
    rate = _deep_rate(s, depth)
    # Integrate in log u: the integrand u / rate(u) is smooth across the plateau.
    val, _ = quad(lambda z: math.exp(z) / rate(math.exp(z)), math.log(u0), math.log(uf),
                  epsabs=0.0, epsrel=1e-11, limit=200)
    return tau * val


def deep_mode_strength(t: np.ndarray | Sequence[float], s: float, u0: float, depth: int,
                       tau: float = 1.0) -> np.ndarray:
    r"""Strength :math:`u(t)` of a balanced mode of a depth-``depth`` linear network, from
    :math:`\tau\dot u = D u^{2-2/D}(s-u)` integrated numerically (rtol 1e-10).

    ``t`` must be non-decreasing. For ``depth = 2`` this equals :func:`mode_strength`.
    """
    check_range("depth", depth, low=1, owner="deep_mode_strength")
    _check_mode(s, u0, "deep_mode_strength")
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or np.any(np.diff(t) < 0) or (t.size and t[0] < 0):
        raise ConfigError("deep_mode_strength: t must be a 1-D non-decreasing array of times >= 0")
    rate = _deep_rate(s, depth)
    # Solve for z = log u: dz/dt = rate(u)/(u tau) is well scaled on the plateau.
    sol = solve_ivp(lambda _t, z: [rate(math.exp(z[0])) / (math.exp(z[0]) * tau)],
                    (0.0, float(t[-1]) if t.size else 0.0), [math.log(u0)], t_eval=t,
                    method="LSODA", rtol=1e-10, atol=1e-12)
    return np.exp(sol.y[0])


def mode_strength_discrete(steps: int, s: float, u0: float, lr: float, depth: int = 2
                           ) -> np.ndarray:
    r"""The exact gradient-descent map of one balanced mode, for ``steps`` steps.

    With the per-layer scalar :math:`a = u^{1/D}`, one step of gradient descent on
    :math:`\tfrac12 (s - a^D)^2` is :math:`a \leftarrow a + \text{lr}\, a^{D-1}(s - a^D)`; it
    stays balanced, so this is exactly what GD does to a decoupled, balanced initialization.
    Returns :math:`u` at steps ``0 .. steps`` (length ``steps + 1``).
    """
    check_range("steps", steps, low=0, owner="mode_strength_discrete")
    check_range("lr", lr, low=0.0, low_open=True, owner="mode_strength_discrete")
    check_range("depth", depth, low=1, owner="mode_strength_discrete")
    _check_mode(s, u0, "mode_strength_discrete")
    a = u0 ** (1.0 / depth)
    out = np.empty(steps + 1)
    out[0] = u0
    for k in range(1, steps + 1):
        a = a + lr * a ** (depth - 1) * (s - a**depth)
        out[k] = a**depth
    return out


def learning_time_vs_depth(depths: Sequence[int], s: float, u0: float | Callable[[int], float],
                           uf: float, lr_scale: float = 1.0) -> np.ndarray:
    r"""Predicted learning time (in steps) of one mode at each depth, at the learning rate
    :math:`\text{lr} = c / (D s^2)` the paper shows to be optimal up to a constant.

    With that rate, :math:`t_D = (1/c) \int_{u_0}^{u_f} s^2\, du / (u^{2-2/D}(s-u))`, which
    stays finite as :math:`D \to \infty` when :math:`u_0` does not shrink with depth: the
    paper's depth-independent learning time for decoupled and random orthogonal
    initializations (whose product map has every singular value ~1). With scaled-Gaussian
    weights the product's singular values spread out with depth (many modes start near 0),
    so :math:`u_0` falls with depth and :math:`t_D` grows; pass ``u0`` as a function of the
    depth to model it.

    Deviations from the paper: the formulas are the paper's as restated above (not re-read line by
    line for this paragraph); the deep (:math:`D > 2`) dynamics assume equal per-layer scalars
    (balanced), and the time unit is optimizer steps through :math:`\tau = 1/\text{lr}` under the
    loss convention stated above.

    Args:
        depths: numbers of weight matrices, each >= 1.
        u0: initial strength, or ``depth -> u0``.
        lr_scale: the constant :math:`c` in the learning rate.
    """
    check_range("lr_scale", lr_scale, low=0.0, low_open=True, owner="learning_time_vs_depth")
    out = []
    for d in depths:
        start = u0(d) if callable(u0) else u0
        lr = lr_scale / (d * s * s)
        out.append(deep_learning_time(s, start, uf, d, tau=1.0 / lr))
    return np.asarray(out)
