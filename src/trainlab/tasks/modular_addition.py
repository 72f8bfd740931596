"""(a + b) mod p classification, the grokking task (rows 33 and 101)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainlab.errors import check_range
from trainlab.tasks._task import TASKS, Task


def modular_addition(p: int = 97, train_fraction: float = 0.5, data_seed: int = 0) -> Task:
    """All p^2 pairs (a, b) labelled (a + b) mod p, split at random into train and test.

    Inputs are the concatenated one-hot codes of a and b (dimension 2p), so any model that
    takes a flat vector applies; ``info["pairs"]`` keeps the integer pairs for token models.

    Deviations from the papers: inputs are the concatenated one-hot codes of ``a`` and ``b`` for
    models that take a flat vector (token models use ``info["pairs"]``); the modulus 97 and the
    random half split are the usual grokking setting, which was not re-read in rows 33 and 101 for
    this paragraph (the Grokfast authors' script, read for
    :func:`trainlab.optim.grokfast.grokfast_adamw`, also uses p = 97 and a half split, on a
    multiplication table).
    """
    check_range("p", p, low=2, owner="modular_addition")
    check_range("train_fraction", train_fraction, low=0.0, high=1.0, low_open=True,
                high_open=True, owner="modular_addition")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    labels = (pairs[:, 0] + pairs[:, 1]) % p
    x = torch.cat([F.one_hot(pairs[:, 0], p), F.one_hot(pairs[:, 1], p)], dim=1).float()
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(data_seed))
    n_train = max(1, int(round(train_fraction * p * p)))
    tr, te = perm[:n_train], perm[n_train:]
    return Task("modular-addition", "classification", x[tr], labels[tr], x[te], labels[te],
                num_outputs=p, default_model="mlp",
                info={"p": p, "pairs_train": pairs[tr], "pairs_test": pairs[te]})


TASKS.register("modular-addition", modular_addition, papers=(33, 101),
               summary="(a + b) mod p classification with a train fraction (grokking)")
