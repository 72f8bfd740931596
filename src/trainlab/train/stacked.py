r"""Stacked runs: R independent training runs of one small feed-forward network executed as
one batched run.

A run of a small network on a CPU is a chain of tiny operations whose cost is dominated by
per-operation (dispatch and autograd) overhead, not by arithmetic. Runs that differ only in
their numbers (seed, data, learning rate, an added penalty) but not in their shapes can share
every operation: each parameter of the R runs is stacked along a new leading axis, and a
``Linear`` layer of all runs becomes one ``torch.baddbmm``,

.. math::

    h^{(r)}_{\text{out}} = h^{(r)}_{\text{in}} W_r^\top + b_r, \qquad r = 1, \dots, R.

The runs stay independent: with the training objective written as the sum over runs of each
run's own loss, :math:`\sum_r L_r(\theta_r)`, the gradient with respect to
:math:`\theta_r` is :math:`\nabla L_r(\theta_r)` (no other term depends on :math:`\theta_r`),
and an elementwise optimizer (SGD, Adam, ...) applied to the stacked tensors applies to every
entry exactly the update of its own run. What is not elementwise must be stacked per run by
the caller (a per-run penalty, per-run random draws, per-run evaluation).

Measured with ``benchmarks/stacked_runs.py`` (one thread, CPU time of one step of all runs:
forward, backward, Adam; 2-hidden-layer ReLU MLP of width 128, batch 64; median of 3, shared
machine at load ~8): 2 runs 1.61 ms one run after the other, 1.17 ms stacked, 1.58 ms with
``torch.func.vmap`` over ``functional_call``; 4 runs 3.03 / 1.58 / 2.19 ms; 6 runs
5.03 / 2.02 / 2.64 ms (stacked 1.4x, 1.9x, 2.5x faster than one at a time; ``vmap`` is
slower than the explicit batched products, hence not used here). With these shapes the
stacked gradients equal the one-at-a-time gradients bit for bit; the tests hold the stacked
runs to float64 round-off over several SGD and Adam steps.

Stacking pays where a step is bound by per-operation overhead; where the batched products
themselves dominate (e.g. deep linear chains of width 64 with several copies already
batched), it does not (saxe-depth: 0.90x, recorded in its docstring).

Only ``nn.Sequential`` networks of ``nn.Flatten``, ``nn.Linear`` (exactly: a subclass may
compute something else, e.g. the NTK parametrization) and elementwise activations are
supported (the layers whose batched form is one batched product or an elementwise map);
anything else is rejected with the list of supported modules rather than run another way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from trainlab.errors import ConfigError

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU, nn.ELU, nn.LeakyReLU,
               nn.Softplus, nn.Identity)
"""Activation modules applied unchanged to the stacked ``(R, B, features)`` tensor."""


def _check_layers(template: nn.Sequential) -> None:
    if not isinstance(template, nn.Sequential):
        raise ConfigError(f"StackedSequential: template must be an nn.Sequential, got "
                          f"{type(template).__name__}")
    for name, module in template.named_children():
        if isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                raise ConfigError(f"StackedSequential: layer {name!r} flattens dims "
                                  f"{module.start_dim}..{module.end_dim}; only "
                                  "nn.Flatten(1, -1) is supported")
        elif type(module) is not nn.Linear and not isinstance(module, ELEMENTWISE):
            supported = ", ".join(t.__name__ for t in (nn.Flatten, nn.Linear, *ELEMENTWISE))
            raise ConfigError(f"StackedSequential: layer {name!r} is a "
                              f"{type(module).__name__}; supported layers: {supported}")
    if any(True for _ in template.buffers()):
        raise ConfigError("StackedSequential: the template has buffers (running statistics "
                          "are not elementwise per run); use networks without buffers")


def stack_parameters(models: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """The parameters of ``models`` (same architecture) stacked along a new leading axis:
    ``name -> tensor of shape (R, *shape)``, fresh leaf tensors that require grad (the
    models are not changed and share nothing with the result).

    Raises:
        ConfigError: no models, or models whose parameter names or shapes differ.
    """
    if not models:
        raise ConfigError("stack_parameters: models must hold at least one model, got none")
    first = dict(models[0].named_parameters())
    for i, model in enumerate(models[1:], start=1):
        shapes = {n: p.shape for n, p in model.named_parameters()}
        if shapes != {n: p.shape for n, p in first.items()}:
            raise ConfigError(f"stack_parameters: model {i} differs from model 0 in its "
                              "parameter names or shapes")
    return {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models])
            .requires_grad_(True) for name in first}


def keep_runs(tensors: Sequence[torch.Tensor], keep: torch.Tensor) -> list[torch.Tensor]:
    """The stacked ``tensors`` restricted to the runs still going: row ``r`` of each is kept
    where the boolean ``(R,)`` mask ``keep[r]`` is True. The results are fresh tensors (leaves
    that require grad where the input did), so a run that stops leaves the stack: nothing of
    it is computed or updated afterwards, and its values stay what the caller read before.
    An optimizer holding the old tensors must be rebuilt on the new ones (its state is not
    carried over).

    Raises:
        ConfigError: ``keep`` is not a boolean vector with one entry per run.
    """
    for t in tensors:
        if keep.dtype != torch.bool or keep.shape != t.shape[:1]:
            raise ConfigError(f"keep_runs: keep must be a bool tensor of shape ({t.shape[0]},), "
                              f"got {keep.dtype} of shape {tuple(keep.shape)}")
    return [t[keep].detach().requires_grad_(True) if t.requires_grad else t[keep]
            for t in tensors]


class StackedSequential:
    """R copies of ``template`` (an ``nn.Sequential`` of ``Flatten``, ``Linear`` and
    elementwise activations), each with its own parameters: ``params[name]`` holds run
    ``r``'s value of ``template``'s parameter ``name`` at index ``r`` (as
    :func:`stack_parameters` returns them). The template supplies only the structure; its own
    parameters are never read.

    Args:
        template: the network whose structure the runs share.
        params: the stacked parameters, ``(R, *shape)`` each, with a common ``R``.

    Raises:
        ConfigError: an unsupported layer, buffers in the template, or a missing, misshapen
            or differently-stacked parameter.
    """

    def __init__(self, template: nn.Sequential, params: Mapping[str, torch.Tensor]):
        _check_layers(template)
        runs = {p.shape[0] for p in params.values()}
        if len(runs) != 1:
            raise ConfigError(f"StackedSequential: params must share one leading run axis, "
                              f"got run counts {sorted(runs)}")
        for name, p in template.named_parameters():
            if name not in params or params[name].shape[1:] != p.shape:
                raise ConfigError(f"StackedSequential: params[{name!r}] must have shape "
                                  f"(R, {', '.join(map(str, p.shape))})")
        self.template, self.params, self.runs = template, dict(params), runs.pop()

    def linear_layers(self) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
        """``(layer name, stacked weight (R, out, in), stacked bias (R, out) or None)`` of
        every ``Linear`` layer, input side first."""
        out = []
        for name, module in self.template.named_children():
            if type(module) is nn.Linear:
                bias = self.params[f"{name}.bias"] if module.bias is not None else None
                out.append((name, self.params[f"{name}.weight"], bias))
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs of all runs: ``x`` of shape ``(R, B, *features)`` (run ``r`` gets
        ``x[r]``) gives ``(R, B, out)``."""
        if x.dim() < 3 or x.shape[0] != self.runs:
            raise ConfigError(f"StackedSequential: x must have shape (R={self.runs}, batch, "
                              f"features...), got {tuple(x.shape)}")
        h = x
        for name, module in self.template.named_children():
            if isinstance(module, nn.Flatten):
                h = h.flatten(2)
            elif type(module) is nn.Linear:
                weight = self.params[f"{name}.weight"].transpose(1, 2)
                if module.bias is None:
                    h = torch.bmm(h, weight)
                else:
                    h = torch.baddbmm(self.params[f"{name}.bias"].unsqueeze(1), h, weight)
            else:
                h = module(h)
        return h

    def run_parameters(self, run: int) -> dict[str, torch.Tensor]:
        """Run ``run``'s parameters as a state dict for ``template`` (detached copies)."""
        if not 0 <= run < self.runs:
            raise ConfigError(f"StackedSequential.run_parameters: run must be in "
                              f"[0, {self.runs - 1}], got {run}")
        return {name: p[run].detach().clone() for name, p in self.params.items()}
