r"""Input convex gradient networks (ICGN): a network that is the gradient of a convex function,
built by integrating a symmetric positive semi-definite matrix field.

.. math::
    g(x) = \int_0^1 H(t x)\, x \, dt, \qquad H(z) = J_V(z)^\top J_V(z),

with :math:`V` the one-layer network :math:`V(z) = \sigma(Wz + b)`, so that
:math:`H(z) = W^\top \operatorname{diag}(\sigma'(Wz + b)^2) W` is the Hessian of the convex
function :math:`\sum_i \phi(w_i^\top z + b_i)` with :math:`\phi'' = \sigma'^2`. Hence
:math:`g = \nabla\psi - \nabla\psi(0)` for a convex :math:`\psi`, :math:`g(0) = 0`, and the
Jacobian of :math:`g` is :math:`H(x)`: symmetric and PSD by construction (monotone :math:`g`).
The integral over :math:`t` is a Gauss-Legendre rule with ``nodes`` points (error 1e-15
against the closed form with 16 nodes in the tests); the integrand
:math:`W^\top(\sigma'(tWx + b)^2 \odot Wx)` is the JVP-then-VJP of :math:`V` written out.

References:
    Richter-Powell, Lorraine, Amos. "Input Convex Gradient Networks", arXiv 2111.12187, 2021
    (papers.md row 57): the ICGN construction, the single-layer network whose output is a
    gradient of a convex function (their toy comparison with an ICNN).

Deviations from the paper:
    Only the single-layer ``V`` is offered: with a deeper ``V`` the field ``H`` is still
    symmetric PSD but in general not a Hessian, so ``g`` is then not a gradient (the
    Jacobian of ``g`` loses symmetry); the paper discusses deeper variants separately.
    The paper's quadrature (not read) may differ: Gauss-Legendre nodes make ``g``
    deterministic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.models._registry import MODELS

_DERIVATIVES = {
    "sigmoid": lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z)),
    "tanh": lambda z: 1 - torch.tanh(z) ** 2,
}


def gauss_legendre_01(nodes: int, *, dtype: torch.dtype = torch.float64
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of the ``nodes``-point Gauss-Legendre rule on ``[0, 1]``."""
    check_range("nodes", nodes, low=1, owner="gauss_legendre_01")
    t, w = np.polynomial.legendre.leggauss(nodes)
    return torch.tensor((t + 1) / 2, dtype=dtype), torch.tensor(w / 2, dtype=dtype)


class ICGN(nn.Module):
    """A single-layer input convex gradient network ``R^d -> R^d``.

    Args:
        dim: the input (and output) dimension ``d``.
        width: rows of ``W`` (hidden units of ``V``).
        activation: ``"sigmoid"`` or ``"tanh"`` (``sigma`` in ``V``).
        nodes: Gauss-Legendre nodes for the integral over ``t``.
    """

    def __init__(self, dim: int, width: int = 32, *, activation: str = "sigmoid",
                 nodes: int = 16):
        super().__init__()
        check_range("dim", dim, low=1, owner="ICGN")
        check_range("width", width, low=1, owner="ICGN")
        check_choice("activation", activation, sorted(_DERIVATIVES), owner="ICGN")
        self.linear = nn.Linear(dim, width)
        self.activation = activation
        t, w = gauss_legendre_01(nodes)
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("w", w, persistent=False)

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """``H(x) = W^T diag(sigma'(Wx + b)^2) W`` per sample: ``(..., d, d)``."""
        weight = self.linear.weight
        s = _DERIVATIVES[self.activation](self.linear(x)) ** 2
        return torch.einsum("hi,...h,hj->...ij", weight, s, weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.linear.weight, self.linear.bias
        z = x @ weight.T  # (..., h)
        t = self.t.to(x.dtype).view(-1, *([1] * z.ndim))
        w = self.w.to(x.dtype).view(-1, *([1] * z.ndim))
        deriv = _DERIVATIVES[self.activation](t * z + bias) ** 2  # (nodes, ..., h)
        return ((w * deriv).sum(0) * z) @ weight


def icgn(input_shape: tuple[int, ...], num_outputs: int, *, width: int = 32,
         activation: str = "sigmoid", nodes: int = 16) -> ICGN:
    """Registry builder: ``num_outputs`` must equal the input dimension (``g: R^d -> R^d``)."""
    dim = int(np.prod(input_shape))
    if len(input_shape) != 1 or num_outputs != dim:
        raise ConfigError(f"The 'num_outputs' parameter of icgn must equal the flat input "
                          f"dimension {dim} of a 1-D input. Got {num_outputs} for input "
                          f"shape {tuple(input_shape)} instead.")
    return ICGN(dim, width, activation=activation, nodes=nodes)


MODELS.register("icgn", icgn, papers=(57,),
                summary="input convex gradient network: g = int H(tx) x dt, H = J^T J (one layer)")
