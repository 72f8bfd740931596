"""A contract closure for a plain function of one tensor, with an exact ``hvp``."""

from __future__ import annotations

import torch
from torch.func import grad, jvp


class FunctionClosure:
    """Contract closure of ``f(w)`` for one tensor ``w``, with an exact ``hvp``."""

    def __init__(self, f, w):
        self.f, self.w = f, w

    def __call__(self):
        self.w.grad = None
        with torch.enable_grad():
            loss = self.f(self.w)
            loss.backward()
        return loss.detach()

    def hvp(self, vectors):
        return [jvp(grad(self.f), (self.w.detach(),), (vectors[0],))[1]]
