r"""A synthetic language with a known entropy floor, for the phenomena that train a small
language model: a random sparse order-``k`` Markov source over a vocabulary of ``V`` tokens.

Each context (the previous ``k`` tokens, :math:`V^k` of them) allows ``branching`` next
tokens, drawn without replacement, with probabilities drawn from a flat Dirichlet; every
other token has probability 0. Sequences start in the chain's stationary distribution over
contexts, so the process is stationary and its best achievable next-token cross-entropy
(the Bayes loss) is known in closed form: the entropy rate

.. math:: H = \sum_c \pi(c)\, H(P(\cdot \mid c)),

with :math:`\pi` the stationary distribution over contexts, for every target that sees a
full context, and :math:`H(X_j \mid X_{<j})` of the stationary marginals for the first
``k - 1`` targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainlab.errors import check_range


@dataclass(frozen=True)
class MarkovSource:
    """The source: ``table[c]`` is the next-token distribution of context index ``c``
    (``c = sum_i x_{t-k+i} V^{k-1-i}``, oldest token most significant), shape ``(V^k, V)``;
    ``stationary`` the stationary distribution over contexts, shape ``(V^k,)``."""

    vocab: int
    order: int
    table: torch.Tensor
    stationary: torch.Tensor

    def sample(self, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` stationary sequences of ``length`` tokens (int64, shape ``(n, length)``)."""
        check_range("length", length, low=self.order, owner="MarkovSource.sample")
        ctx = torch.multinomial(self.stationary, n, replacement=True, generator=generator)
        digits = [(ctx // self.vocab ** (self.order - 1 - i)) % self.vocab
                  for i in range(self.order)]
        out = torch.empty(n, length, dtype=torch.long)
        out[:, :self.order] = torch.stack(digits, 1)
        base = self.vocab ** (self.order - 1)
        for t in range(self.order, length):
            nxt = torch.multinomial(self.table[ctx], 1, generator=generator).squeeze(1)
            out[:, t] = nxt
            ctx = (ctx % base) * self.vocab + nxt
        return out

    def entropy_rate(self) -> float:
        """:math:`H = \\sum_c \\pi(c) H(P(\\cdot|c))` in nats per token."""
        p = self.table.double()
        per_ctx = -(p * torch.log(p.clamp_min(1e-300))).sum(1)
        return float(self.stationary.double() @ per_ctx)

    def bayes_loss(self, length: int) -> float:
        """The Bayes next-token loss averaged over the targets ``1..length-1`` of a
        sequence of ``length`` tokens: :math:`H(X_j|X_{<j})` for ``j < k`` (from the
        stationary marginals of the first ``j + 1`` tokens), the entropy rate after."""
        check_range("length", length, low=max(2, self.order), owner="MarkovSource.bayes_loss")
        pi = self.stationary.double()

        def block_entropy(j: int) -> float:  # entropy of the first j tokens (j <= k)
            marg = pi.reshape(self.vocab ** j, -1).sum(1) if j else torch.ones(1)
            return float(-(marg * torch.log(marg.clamp_min(1e-300))).sum())

        early = [block_entropy(j + 1) - block_entropy(j)
                 for j in range(1, min(self.order, length))]
        rest = (length - 1 - len(early)) * self.entropy_rate()
        return (sum(early) + rest) / (length - 1)


def _stationary(table: torch.Tensor, vocab: int, order: int) -> torch.Tensor:
    """The stationary distribution of the chain over contexts (the left eigenvector of
    its transition matrix for eigenvalue 1, by power iteration in float64)."""
    n_ctx = vocab ** order
    trans = torch.zeros(n_ctx, n_ctx, dtype=torch.float64)
    ctx = torch.arange(n_ctx)
    base = vocab ** (order - 1)
    for tok in range(vocab):
        trans[ctx, (ctx % base) * vocab + tok] += table[:, tok].double()
    pi = torch.full((n_ctx,), 1.0 / n_ctx, dtype=torch.float64)
    for _ in range(10_000):
        nxt = 0.5 * (pi + pi @ trans)  # lazy chain: same fixed point, no periodicity
        if float((nxt - pi).abs().sum()) < 1e-13:
            return nxt / nxt.sum()
        pi = nxt
    raise RuntimeError("MarkovSource: the stationary distribution did not converge")


def markov_source(vocab: int, order: int, branching: int, generator: torch.Generator
                  ) -> MarkovSource:
    """A random sparse order-``order`` source: per context, ``branching`` allowed next
    tokens (uniform without replacement) with flat-Dirichlet probabilities, drawn from
    ``generator``."""
    check_range("vocab", vocab, low=2, owner="markov_source")
    check_range("order", order, low=1, owner="markov_source")
    check_range("branching", branching, low=1, high=vocab, owner="markov_source")
    n_ctx = vocab ** order
    support = torch.rand(n_ctx, vocab, generator=generator).argsort(1)[:, :branching]
    weights = -torch.log(torch.rand(n_ctx, branching, generator=generator))  # Gamma(1)
    table = torch.zeros(n_ctx, vocab, dtype=torch.float64)
    table.scatter_(1, support, weights.double() / weights.double().sum(1, keepdim=True))
    pi = _stationary(table, vocab, order)
    return MarkovSource(vocab, order, table.float(), pi.float())

