r"""Guess directions for forward gradients from local auxiliary losses.

The network (an ``nn.Sequential``) is cut into blocks at ``cuts``. Each block except the last
gets a small auxiliary head (a linear map of its flattened output to the model's outputs) and
a *local* loss ``loss_fn(head(block(h_in)), targets)`` with the block input ``h_in`` detached:
its gradient with respect to the block's parameters needs backpropagation only inside the
block. The last block uses the model's own loss. Each block's local gradient is one guess
direction ``u_b`` (zero outside block ``b``); the forward gradient projects the true gradient
onto their span with one Jacobian-vector product per guess
(:func:`~trainlab.optim.estimators.forward_gradient.forward_gradient` with ``guesses``; the
guesses have disjoint supports, so the sum of the projections is the projection onto the
span). :meth:`LocalLossGuess.alignment` reports the cosine similarity of the estimate with
the backpropagated gradient, the quantity the paper measures.

References:
    Fournier, Rivaud, Belilovsky, Eickenberg, Oyallon. "Can Forward Gradient Match
    Backpropagation?", ICML 2023 (papers.md row 9): guesses from local auxiliary losses.

Deviations from the paper:
    Heads are single linear layers on the flattened block output (the paper also studies
    deeper auxiliary nets); training the heads is left to the caller (their local gradients
    are returned).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab.curvature import loss_function, trainable_params
from trainlab.errors import ConfigError
from trainlab.optim.estimators.forward_gradient import ForwardGradient, forward_gradient

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class LocalGuesses:
    """Guess directions (one per block, full parameter dicts) and the heads' local
    gradients (one list per head, in ``head.parameters()`` order)."""

    guesses: list[Params]
    head_grads: list[list[torch.Tensor]]


class LocalLossGuess:
    """Local-loss guess directions for a sequential model (module docstring).

    Args:
        model: an ``nn.Sequential``.
        cuts: indices ``i`` after which a block ends (``model[:i+1]`` closes the first
            block), increasing, each before the last layer.
        num_outputs: width of the heads' output (the model's output width).
        loss_fn: ``loss_fn(outputs, targets)``.
        generator: randomness of the heads' initialization (PyTorch's default uniform rule).
    """

    def __init__(self, model: nn.Sequential, cuts: Sequence[int], num_outputs: int,
                 loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
                 generator: torch.Generator | None = None):
        if not isinstance(model, nn.Sequential):
            raise ConfigError("LocalLossGuess needs an nn.Sequential model")
        cuts = list(cuts)
        if cuts != sorted(set(cuts)) or not cuts or cuts[0] < 0 or cuts[-1] >= len(model) - 1:
            raise ConfigError(f"LocalLossGuess: cuts must be increasing indices in "
                              f"[0, {len(model) - 2}]; got {cuts}")
        self.model, self.cuts, self.loss_fn = model, cuts, loss_fn
        self.num_outputs, self.generator = num_outputs, generator
        self.heads: list[nn.Linear] = []
        bounds = [-1, *cuts, len(model) - 1]
        self.blocks = [list(range(a + 1, b + 1)) for a, b in zip(bounds, bounds[1:])]

    def _block_params(self, block: list[int]) -> dict[str, torch.Tensor]:
        return {f"{i}.{n}": p for i in block for n, p in self.model[i].named_parameters()
                if p.requires_grad}

    def _head(self, b: int, width: int, like: torch.Tensor) -> nn.Linear:
        while len(self.heads) <= b:
            self.heads.append(None)  # type: ignore[arg-type]
        if self.heads[b] is None:
            head = nn.Linear(width, self.num_outputs).to(like.dtype).to(like.device)
            bound = width ** -0.5
            with torch.no_grad():
                for p in head.parameters():
                    u = torch.rand(p.shape, generator=self.generator, dtype=p.dtype,
                                   device=p.device)
                    p.copy_((2 * u - 1) * bound)
            self.heads[b] = head
        return self.heads[b]

    def guesses(self, inputs: torch.Tensor, targets: Any) -> LocalGuesses:
        """One guess per block from its local loss at the model's current parameters."""
        names = list(trainable_params(self.model))
        guesses, head_grads = [], []
        h = inputs
        with torch.enable_grad():
            for b, block in enumerate(self.blocks):
                out = h.detach()
                for i in block:
                    out = self.model[i](out)
                params = self._block_params(block)
                last = b == len(self.blocks) - 1
                head = None if last else self._head(b, out[0].numel(), out)
                local = self.loss_fn(out if last else head(out.flatten(1)), targets)
                wrt = list(params.values()) + ([] if last else list(head.parameters()))
                grads = torch.autograd.grad(local, wrt, allow_unused=True)
                grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt)]
                own = dict(zip(params, grads[:len(params)]))
                guesses.append({n: own[n].detach() if n in own else
                                torch.zeros_like(dict(self.model.named_parameters())[n])
                                for n in names})
                head_grads.append([g.detach() for g in grads[len(params):]])
                h = out.detach()
        return LocalGuesses(guesses, head_grads)

    def estimate(self, inputs: torch.Tensor, targets: Any) -> ForwardGradient:
        """The forward-gradient estimate projected onto the local-loss guesses."""
        guesses = [u for u in self.guesses(inputs, targets).guesses
                   if any(bool(t.any()) for t in u.values())]
        f = loss_function(self.model, self.loss_fn, inputs, targets)
        return forward_gradient(f, trainable_params(self.model), guesses=guesses)

    def alignment(self, inputs: torch.Tensor, targets: Any) -> float:
        """Cosine similarity between :meth:`estimate` and the backpropagated gradient
        (``p.grad`` untouched)."""
        f = loss_function(self.model, self.loss_fn, inputs, targets)
        true = torch.func.grad(f)(trainable_params(self.model))
        return self.estimate(inputs, targets).alignment(true)
