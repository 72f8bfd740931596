r"""Alignment of the optimizer's momentum with the current gradient: the cosine between the
first-moment buffer (``exp_avg`` of Adam-family optimizers, ``momentum_buffer`` of SGD) and
the gradient, per parameter tensor and over all parameters. Near 1 the momentum follows
the gradient; near 0 or negative the gradient has turned (oscillation across a valley)."""

from __future__ import annotations

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext

_KEYS = ("exp_avg", "momentum_buffer")


class MomentumAlignment(Probe):
    """``momentum_cos`` (global) and ``momentum_cos/<name>`` per tensor. The buffer is read
    after the optimizer step, so it already includes this step's gradient."""

    name = "momentum-alignment"

    def measure(self, ctx: ProbeContext) -> Measurement:
        if ctx.optimizer is None:
            return ctx.skip(self.name, "no optimizer was given to the monitor")
        if not ctx.optimizer.state:  # before the first update: no buffer yet
            return {}
        names = {p: n for n, p in ctx.model.named_parameters()}
        out: Measurement = {}
        dots, mm, gg = [], [], []
        for p, state in ctx.optimizer.state.items():
            buf = next((state[k] for k in _KEYS if state.get(k) is not None), None)
            if buf is None or p.grad is None or p not in names:
                continue
            m, g = buf.reshape(-1), p.grad.detach().reshape(-1)
            d, m2, g2 = torch.dot(m, g), torch.dot(m, m), torch.dot(g, g)
            dots.append(d)
            mm.append(m2)
            gg.append(g2)
            out[f"momentum_cos/{names[p]}"] = d / (m2 * g2).sqrt().clamp_min(1e-300)
        if dots:
            out["momentum_cos"] = torch.stack(dots).sum() / (
                torch.stack(mm).sum() * torch.stack(gg).sum()).sqrt().clamp_min(1e-300)
        else:
            return ctx.skip(self.name, f"{type(ctx.optimizer).__name__} keeps no momentum "
                            f"buffer ({' / '.join(_KEYS)}) for a parameter with a gradient")
        return out


PROBES.register("momentum-alignment", MomentumAlignment, ddp="replicated",
                metrics=("momentum_cos", "momentum_cos/*"),
                plot="curves", title="Momentum alignment",
                summary="cosine between the momentum buffer (exp_avg / momentum_buffer) and grad")
