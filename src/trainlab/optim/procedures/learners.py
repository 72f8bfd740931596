r"""Learners as composable morphisms: "Backprop as Functor".

A learner from :math:`A` to :math:`B` is a tuple :math:`(P, I, U, r)`: a parameter space
:math:`P`, an implementation :math:`I: P \times A \to B`, an update
:math:`U: P \times A \times B \to P` and a request :math:`r: P \times A \times B \to A` (the
input the learner would have liked to receive). Learners compose sequentially, with parameter
space :math:`P \times Q`:

.. math::
    (J \circ I)((p, q), a) &= J(q, I(p, a)) \\
    U'((p, q), a, c) &= \big(U(p, a, s(q, I(p, a), c)),\; V(q, I(p, a), c)\big) \\
    r'((p, q), a, c) &= r(p, a, s(q, I(p, a), c)),

so the second learner's request becomes the first learner's training target: credit
assignment travels backwards through requests.

:func:`gradient_learner` is the functor :math:`L_{\varepsilon, e}` from parametrised maps to
learners for the quadratic error :math:`e(x, y) = \frac12 \|x - y\|^2`:
:math:`U(p, a, b) = p - \varepsilon \nabla_p E(p, a, b)` and
:math:`r(p, a, b) = a - \nabla_a E(p, a, b)` with :math:`E(p, a, b) = e(I(p, a), b)` (summed
over a batch). Functoriality: the composite of two gradient learners updates exactly as
gradient descent (backpropagation plus SGD) on the composite function (tested).

References:
    Fong, Spivak, Tuyéras. "Backprop as Functor: A compositional perspective on supervised
    learning", LICS 2019 (papers.md row 118).

Deviations from the paper:
    Only the quadratic error (whose request rule is :math:`a - \nabla_a E`) is provided; the
    monoidal (parallel) product is not implemented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad

from trainlab.errors import check_range


@dataclass(frozen=True)
class Learner:
    """A learner ``(P, I, U, r)``; ``params`` is the current point of ``P``.

    Attributes:
        implement: ``I(p, a) -> b``.
        update: ``U(p, a, b) -> p'``.
        request: ``r(p, a, b) -> a'``.
        params: the current parameters (any pytree: tensor, dict, tuple).
    """

    implement: Callable[[Any, Any], Any]
    update: Callable[[Any, Any, Any], Any]
    request: Callable[[Any, Any, Any], Any]
    params: Any

    def __call__(self, a: Any) -> Any:
        """``I(params, a)``."""
        return self.implement(self.params, a)

    def then(self, other: Learner) -> Learner:
        """Sequential composite ``other . self`` (``self`` first), parameters
        ``(self.params, other.params)``."""

        def implement(pq, a):
            return other.implement(pq[1], self.implement(pq[0], a))

        def target(pq, a, c):
            return other.request(pq[1], self.implement(pq[0], a), c)

        def update(pq, a, c):
            b = self.implement(pq[0], a)
            return (self.update(pq[0], a, other.request(pq[1], b, c)),
                    other.update(pq[1], b, c))

        def request(pq, a, c):
            return self.request(pq[0], a, target(pq, a, c))

        return Learner(implement, update, request, (self.params, other.params))

    def __rshift__(self, other: Learner) -> Learner:
        return self.then(other)

    def step(self, a: Any, b: Any) -> Learner:
        """The learner with its parameters updated on the pair ``(a, b)``."""
        return Learner(self.implement, self.update, self.request,
                       self.update(self.params, a, b))


def _descend(p: Any, g: Any, lr: float) -> Any:
    """``p - lr * g`` over a pytree of tensors (tensor, dict, tuple or list)."""
    if isinstance(p, torch.Tensor):
        return (p - lr * g).detach()
    if isinstance(p, dict):
        return {k: _descend(v, g[k], lr) for k, v in p.items()}
    return type(p)(_descend(v, d, lr) for v, d in zip(p, g))


def gradient_learner(fn: Callable[[Any, torch.Tensor], torch.Tensor], params: Any, lr: float
                     ) -> Learner:
    """The functor ``L_{lr, quadratic}`` applied to the parametrised map ``fn(p, a)``."""
    check_range("lr", lr, low=0.0, owner="gradient_learner")

    def error(p, a, b):
        return 0.5 * ((fn(p, a) - b) ** 2).sum()

    def update(p, a, b):
        return _descend(p, grad(error, argnums=0)(p, a, b), lr)

    def request(p, a, b):
        return (a - grad(error, argnums=1)(p, a, b)).detach()

    return Learner(fn, update, request, params)


def module_learner(module: nn.Module, lr: float) -> Learner:
    """:func:`gradient_learner` of an ``nn.Module`` (parameters: a dict, copied; the module
    itself is not modified)."""
    params = {n: p.detach().clone() for n, p in module.named_parameters()}

    def fn(p, a):
        return functional_call(module, p, (a,))

    return gradient_learner(fn, params, lr)
