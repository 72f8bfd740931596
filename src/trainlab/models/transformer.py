r"""A small decoder-only transformer (pre-LayerNorm GPT block) with the two stabilizers of
Wortsman et al., "Small-scale proxies for large-scale Transformer training instabilities"
(2023; papers.md row 98):

- qk-layernorm: LayerNorm on the queries and keys of each head before the dot product,
  which stops the attention logits from growing without bound (``qk_layernorm=True``);
- z-loss: :math:`10^{-4} \log^2 Z` added to the loss, with :math:`Z` the softmax normalizer of
  the output logits, which keeps :math:`\log Z` near 0 (:func:`with_z_loss` wraps a loss).

The attention is written out (not ``scaled_dot_product_attention``) so that
:meth:`CausalSelfAttention.attention_logits` can expose the pre-softmax logits to probes.
Input: integer tokens ``(N, T)``; output: logits of the last position ``(N, num_outputs)``
(``readout="last"``) or of every position ``(N, T, num_outputs)`` (``readout="all"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.models._registry import MODELS
from trainlab.tasks._task import z_loss


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with optional qk-layernorm."""

    def __init__(self, d_model: int, heads: int, qk_layernorm: bool = False,
                 bias: bool = True):
        super().__init__()
        if d_model % heads:
            raise ConfigError(f"transformer: d_model ({d_model}) must be divisible by heads "
                              f"({heads})")
        self.heads, self.d_head = heads, d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.q_norm = nn.LayerNorm(self.d_head, bias=bias) if qk_layernorm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.d_head, bias=bias) if qk_layernorm else nn.Identity()

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, t, _ = x.shape
        q, k, v = self.qkv(x).split(self.heads * self.d_head, dim=-1)
        q, k, v = (z.view(n, t, self.heads, self.d_head).transpose(1, 2) for z in (q, k, v))
        return self.q_norm(q), self.k_norm(k), v

    def attention_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax logits :math:`q k^T/\\sqrt{d_h}` ``(N, heads, T, T)``; masked
        (future) entries are ``-inf``."""
        q, k, _ = self._qkv(x)
        return self._logits(q, k)

    def _logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        t = q.shape[-2]
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
        return logits.masked_fill(mask, float("-inf"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        att = torch.softmax(self._logits(q, k), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(x.shape)
        return self.proj(y)


class Block(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))`` (GELU MLP)."""

    def __init__(self, d_model: int, heads: int, mlp_ratio: int, qk_layernorm: bool,
                 bias: bool = True):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model, bias=bias), nn.LayerNorm(d_model, bias=bias)
        self.attn = CausalSelfAttention(d_model, heads, qk_layernorm, bias)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model, bias=bias), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Token and learned position embeddings, ``layers`` blocks, final LayerNorm, linear
    head. ``vocab_size`` defaults to ``num_outputs``; the context length is
    ``input_shape[0]``. ``bias=False`` drops the additive bias of every linear layer and
    LayerNorm (the paper's models have no biases, Sec. 2.1).

    Deviations from the paper: a scale-down: the paper's proxies are much larger transformers
    trained on language data, this is a small pre-LayerNorm decoder (defaults ``d_model = 64``, 4
    heads, 2 layers) with learned position embeddings; qk-layernorm is off by default and the z-loss
    is a loss wrapper (:func:`with_z_loss`). Other architectural details of the paper's models were
    not re-read for this paragraph.
    """

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, *, d_model: int = 64,
                 heads: int = 4, layers: int = 2, mlp_ratio: int = 4,
                 vocab_size: int | None = None, qk_layernorm: bool = False,
                 readout: str = "last", bias: bool = True):
        super().__init__()
        if len(input_shape) != 1:
            raise ConfigError(f"transformer: input_shape must be (sequence_length,). Got "
                              f"{input_shape!r} instead.")
        for name, value in (("d_model", d_model), ("heads", heads), ("layers", layers),
                            ("mlp_ratio", mlp_ratio)):
            check_range(name, value, low=1, owner="transformer")
        check_choice("readout", readout, ("last", "all"), owner="transformer")
        self.readout = readout
        vocab = num_outputs if vocab_size is None else vocab_size
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(input_shape[0], d_model)
        self.blocks = nn.Sequential(*[Block(d_model, heads, mlp_ratio, qk_layernorm, bias)
                                      for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d_model, bias=bias)
        self.head = nn.Linear(d_model, num_outputs, bias=bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        x = self.tok(tokens.long()) + self.pos(torch.arange(t, device=tokens.device))
        h = self.ln_f(self.blocks(x))
        return self.head(h[:, -1] if self.readout == "last" else h)


def with_z_loss(loss_fn: Callable[[torch.Tensor, Any], torch.Tensor], coef: float = 1e-4
                ) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """``loss_fn`` plus ``coef * z_loss(outputs)`` (the paper's coefficient is 1e-4)."""
    check_range("coef", coef, low=0.0, owner="with_z_loss")

    def loss(outputs: torch.Tensor, targets: Any) -> torch.Tensor:
        return loss_fn(outputs, targets) + coef * z_loss(outputs)

    return loss


MODELS.register("transformer", Transformer, papers=(98,),
                summary="small decoder-only transformer (optional qk-layernorm) on token inputs")
