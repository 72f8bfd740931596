"""The transformer against a reference attention, qk-layernorm bounds the logits, z-loss
against its formula, the sequence task's labels, and the two transformer probes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, context, snapshot

from trainlab.models import build_model
from trainlab.models.transformer import with_z_loss, z_loss
from trainlab.probes.attention_logits import AttentionLogits, max_attention_logits
from trainlab.probes.logit_divergence import LogitDivergence
from trainlab.tasks import build_task


def small(qk=False, seed=0):
    torch.manual_seed(seed)
    return build_model("transformer", (6,), 7, d_model=8, heads=2, layers=2,
                       qk_layernorm=qk).double()


def reference_attention(attn, x):
    """Multi-head causal attention from the layer's weights with torch's SDPA."""
    n, t, d = x.shape
    h, dh = attn.heads, attn.d_head
    q, k, v = F.linear(x, attn.qkv.weight, attn.qkv.bias).split(d, dim=-1)
    q, k, v = (z.view(n, t, h, dh).transpose(1, 2) for z in (q, k, v))
    q, k = attn.q_norm(q), attn.k_norm(k)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return attn.proj(y.transpose(1, 2).reshape(n, t, d))


@pytest.mark.parametrize("qk", [False, True])
def test_attention_matches_sdpa_and_logits(qk):
    model = small(qk)
    attn = model.blocks[0].attn
    x = torch.randn(3, 6, 8, dtype=torch.float64)
    torch.testing.assert_close(attn(x), reference_attention(attn, x))
    logits = attn.attention_logits(x)
    assert torch.isinf(logits[..., 0, 1]).all()  # causal mask
    q, k, _ = F.linear(x, attn.qkv.weight, attn.qkv.bias).split(8, dim=-1)
    q = attn.q_norm(q.view(3, 6, 2, 4).transpose(1, 2))
    k = attn.k_norm(k.view(3, 6, 2, 4).transpose(1, 2))
    torch.testing.assert_close(logits[..., 3, :4], (q @ k.transpose(-1, -2))[..., 3, :4] / 2.0)


def test_qk_layernorm_bounds_attention_logits():
    """With qk-layernorm (unit gains) |q|=|k|=sqrt(d_head), so |logit| <= sqrt(d_head)."""
    tokens = torch.randint(0, 7, (4, 6))
    for qk, bounded in ((False, False), (True, True)):
        model = small(qk)
        with torch.no_grad():
            for b in model.blocks:
                b.attn.qkv.weight.mul_(30.0)
        top = max(float(v) for v in max_attention_logits(model, tokens).values())
        assert (top <= math.sqrt(4) + 1e-9) == bounded


def test_z_loss_formula_and_gradient():
    logits = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 7, (5,))
    ref = torch.log(torch.exp(logits).sum(-1)).pow(2).mean()
    torch.testing.assert_close(z_loss(logits), ref)
    loss = with_z_loss(F.cross_entropy, 1e-4)(logits, y)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y) + 1e-4 * ref)


@pytest.mark.parametrize("rule", ["lag", "sum-mod"])
def test_sequence_task_labels(rule):
    task = build_task("sequence", vocab_size=5, length=6, rule=rule, lag=1, n_train=50,
                      n_test=10)
    x, y = task.x_train, task.y_train
    assert x.dtype == torch.int64 and x.shape == (50, 6) and task.input_shape == (6,)
    ref = x[:, -2] if rule == "lag" else x.sum(1) % 5
    assert torch.equal(y, ref)
    model = build_model(task.default_model, task.input_shape, task.num_outputs)
    assert model(x).shape == (50, 5)


def test_transformer_probes_restore_model():
    model = small()
    x = torch.randint(0, 7, (5, 6))
    y = torch.randint(0, 7, (5,))
    ctx = context(model, x, y)
    snap = snapshot(model)
    a = AttentionLogits().measure(ctx)
    d = LogitDivergence().measure(ctx)
    assert_unchanged(model, snap)
    assert set(a) == {"attn_logit_max", "attn_logit_max/blocks.0.attn",
                      "attn_logit_max/blocks.1.attn"}
    with torch.no_grad():
        out = model(x)
    torch.testing.assert_close(d["logit/log_z_mean"], torch.logsumexp(out, -1).mean())
    torch.testing.assert_close(d["logit/abs_max"], out.abs().max())


@pytest.mark.parametrize("qk", [False, True])
def test_transformer_without_biases_equals_zero_biases(qk):
    """``bias=False`` (the paper's models have no biases): no bias parameter anywhere, and
    the same function as the biased model with the same weights and every bias zero."""
    torch.manual_seed(0)
    kw = dict(d_model=8, heads=2, layers=2, qk_layernorm=qk, readout="all")
    plain = build_model("transformer", (6,), 7, bias=False, **kw).double()
    assert not [n for n, _ in plain.named_parameters() if n.endswith("bias")]
    biased = build_model("transformer", (6,), 7, **kw).double()
    missing = biased.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(n.endswith("bias") for n in missing)
    with torch.no_grad():
        for n in missing:
            biased.get_parameter(n).zero_()
    tokens = torch.randint(0, 7, (3, 6), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(plain(tokens), biased(tokens), rtol=0, atol=1e-12)
