r"""Permutation alignment of two MLPs by weight matching (Ainsworth, Hayase, Srinivasa,
"Git Re-Basin: Merging Models modulo Permutation Symmetries", ICLR 2023, algorithm 2).

Hidden units of an MLP can be permuted without changing its function. Weight matching finds,
for each hidden layer, the permutation of model B's units that maximizes
:math:`\sum_l \langle W^A_l, P_l W^B_l P_{l-1}^T\rangle + \langle b^A_l, P_l b^B_l\rangle`,
one layer at a time by a linear assignment with the others held fixed, in random order,
until no layer changes.
"""

from __future__ import annotations

import copy

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from trainlab.errors import ConfigError, check_range


def _linears(model: nn.Module) -> list[nn.Linear]:
    if not isinstance(model, nn.Sequential):
        raise ConfigError("weight matching supports nn.Sequential MLPs (Linear layers with "
                          f"elementwise activations); got {type(model).__name__}")
    out = []
    for m in model:
        if isinstance(m, nn.Linear):
            out.append(m)
        elif list(m.parameters()):
            raise ConfigError(f"weight matching: unsupported layer with parameters: "
                              f"{type(m).__name__}")
    return out


def weight_matching(model_a: nn.Module, model_b: nn.Module, *, max_iter: int = 100,
                    generator: torch.Generator | None = None) -> nn.Module:
    """A copy of ``model_b`` with its hidden units permuted to match ``model_a`` (same
    function as ``model_b``; ``model_b`` itself is not changed).

    Deviations from the paper: MLPs only (the paper also aligns convolutional and residual
    networks), and the layer order of the coordinate descent is drawn from ``generator``; the
    paper's Algorithm 2 was not re-read for this paragraph.
    """
    check_range("max_iter", max_iter, low=1, owner="weight_matching")
    la, lb = _linears(model_a), _linears(model_b)
    if [m.weight.shape for m in la] != [m.weight.shape for m in lb]:
        raise ConfigError("weight matching: the two models have different layer shapes")
    wa = [m.weight.detach().double() for m in la]
    wb = [m.weight.detach().double() for m in lb]
    ba = [None if m.bias is None else m.bias.detach().double() for m in la]
    bb = [None if m.bias is None else m.bias.detach().double() for m in lb]
    hidden = len(la) - 1
    perms = [torch.arange(wa[i].shape[0]) for i in range(hidden)]

    def in_perm(i: int) -> torch.Tensor | None:  # permutation of layer i's inputs
        return perms[i - 1] if i >= 1 else None

    for _ in range(max_iter):
        changed = False
        order = torch.randperm(hidden, generator=generator).tolist()
        for i in order:
            w_b = wb[i] if in_perm(i) is None else wb[i][:, in_perm(i)]
            sim = wa[i] @ w_b.T
            if ba[i] is not None:
                sim = sim + torch.outer(ba[i], bb[i])
            nxt = wb[i + 1] if i + 1 >= hidden else wb[i + 1][perms[i + 1]]
            sim = sim + wa[i + 1].T @ nxt
            _, cols = linear_sum_assignment(sim.numpy(), maximize=True)
            new = torch.as_tensor(cols)
            if not torch.equal(new, perms[i]):
                old_score = sim[torch.arange(len(new)), perms[i]].sum()
                new_score = sim[torch.arange(len(new)), new].sum()
                if new_score > old_score + 1e-12 * old_score.abs():
                    perms[i], changed = new, True
        if not changed:
            break
    out = copy.deepcopy(model_b)
    with torch.no_grad():
        for i, m in enumerate(_linears(out)):
            w = m.weight
            rows = perms[i] if i < hidden else torch.arange(w.shape[0])
            cols = perms[i - 1] if i >= 1 else torch.arange(w.shape[1])
            w.copy_(w[rows][:, cols])
            if m.bias is not None:
                m.bias.copy_(m.bias[rows])
    return out
