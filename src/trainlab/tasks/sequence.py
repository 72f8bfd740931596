"""A synthetic sequence task for small transformers: predict a token of the sequence from
the whole sequence (a classification over the vocabulary, read out at the last position)."""

from __future__ import annotations

import torch

from trainlab.errors import check_choice, check_range
from trainlab.tasks._task import TASKS, Task


def sequence(vocab_size: int = 16, length: int = 8, rule: str = "lag", lag: int = 2,
             n_train: int = 2048, n_test: int = 1024, data_seed: int = 0) -> Task:
    """Uniform random token sequences ``(N, length)`` labelled by ``rule``:

    - ``"lag"``: the token ``lag`` positions before the last one (``x[:, -1 - lag]``), which
      a transformer solves by attending to one relative position;
    - ``"sum-mod"``: the sum of all tokens modulo ``vocab_size``.

    Inputs are integer tokens (``int64``), so the default model is ``"transformer"``.
    """
    check_range("vocab_size", vocab_size, low=2, owner="sequence")
    check_range("length", length, low=1, owner="sequence")
    check_range("n_train", n_train, low=1, owner="sequence")
    check_range("n_test", n_test, low=1, owner="sequence")
    check_choice("rule", rule, ("lag", "sum-mod"), owner="sequence")
    if rule == "lag":
        check_range("lag", lag, low=0, high=length - 1, owner="sequence")
    g = torch.Generator().manual_seed(data_seed)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, vocab_size, (n, length), generator=g)
        y = x[:, -1 - lag] if rule == "lag" else x.sum(1) % vocab_size
        return x, y.clone()

    x_tr, y_tr = sample(n_train)
    x_te, y_te = sample(n_test)
    return Task("sequence", "classification", x_tr, y_tr, x_te, y_te, num_outputs=vocab_size,
                default_model="transformer",
                info={"rule": rule, "lag": lag, "vocab_size": vocab_size})


TASKS.register("sequence", sequence,
               summary="synthetic token sequences (lagged-token or sum-mod label) for transformers")
