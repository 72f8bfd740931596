"""Signal propagation and tangent alignment against explicit layer-by-layer references."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot

from trainlab.probes.signal_propagation import SignalPropagation
from trainlab.probes.tangent_alignment import TangentAlignment


def test_signal_statistics_match_manual_forward():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = SignalPropagation().measure(ctx)
    assert_unchanged(model, snap)
    assert all(not m._forward_hooks for m in model.modules())
    h, acts = x, []
    for layer in model:
        h = layer(h)
        h.retain_grad()
        acts.append(h)
    F.cross_entropy(h, y).backward()
    for i, a in enumerate(acts):
        torch.testing.assert_close(out[f"act_mean/{i}"], a.detach().mean())
        torch.testing.assert_close(out[f"act_std/{i}"], a.detach().std())
        torch.testing.assert_close(out[f"act_grad_rms/{i}"], a.grad.pow(2).mean().sqrt())


def test_tangent_alignment_against_loop_of_jacobian_rows():
    model = mlp(sizes=(5, 6, 4, 3))
    x, y = batch(n=8)
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = TangentAlignment().measure(ctx)
    assert_unchanged(model, snap)
    labels = F.one_hot(y, 3).double()
    yy = labels @ labels.T
    for layer in ("0", "2", "4"):
        ps = [p for n, p in model.named_parameters() if n.startswith(layer + ".")]
        feats = torch.zeros(len(x), 3, sum(p.numel() for p in ps), dtype=torch.float64)
        for i in range(len(x)):
            for c in range(3):
                g = torch.autograd.grad(model(x[i:i + 1])[0, c], ps)
                feats[i, c] = torch.cat([t.reshape(-1) for t in g])
        k = torch.einsum("icp,jcp->ij", feats, feats)
        ref = (k * yy).sum() / (k.norm() * yy.norm())
        torch.testing.assert_close(out[f"tangent_alignment/{layer}"], ref)
