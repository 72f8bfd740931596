r"""The Elman (vanilla) recurrent network with a linear readout.

:math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`, :math:`h_0 = 0`, and
:math:`y = W_o h_T + b_o` (``readout="last"``) or :math:`y_t = W_o h_t + b_o` for every
step (``readout="all"``). This is the network of "On the difficulty of training Recurrent
Neural Networks" (Pascanu, Mikolov & Bengio, ICML 2013; papers.md row 31), whose gradients
explode when :math:`\|W_{hh}\|` is large and vanish when it is small.

The recurrence is :class:`torch.nn.RNN` (fused loop over time, cuDNN on GPUs), held as
``.rnn``; the readout is the Linear layer ``.out``. Note for initialization: the default
layer selector of :func:`trainlab.init.apply` sees only ``.out`` (the recurrent and input
weights are ``rnn.weight_hh_l<k>`` / ``rnn.weight_ih_l<k>``, exposed for the first layer as
:attr:`ElmanRNN.recurrent_weight` and :attr:`ElmanRNN.input_weight`); initialize them with
the tensor-level schemes, e.g. ``orthogonal_(model.recurrent_weight, gain=1.5)``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.models._registry import MODELS


class ElmanRNN(nn.Module):
    """Elman RNN on ``(N, T, d)`` inputs (batch first); outputs ``(N, num_outputs)`` for
    ``readout="last"`` and ``(N, T, num_outputs)`` for ``readout="all"``."""

    def __init__(self, input_size: int, num_outputs: int, *, hidden: int = 32, layers: int = 1,
                 nonlinearity: Literal["tanh", "relu"] = "tanh", bias: bool = True,
                 readout: Literal["last", "all"] = "last"):
        super().__init__()
        check_range("input_size", input_size, low=1, owner="rnn")
        check_range("hidden", hidden, low=1, owner="rnn")
        check_range("layers", layers, low=1, owner="rnn")
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"), owner="rnn")
        check_choice("readout", readout, ("last", "all"), owner="rnn")
        self.readout = readout
        self.rnn = nn.RNN(input_size, hidden, num_layers=layers, nonlinearity=nonlinearity,
                          bias=bias, batch_first=True)
        self.out = nn.Linear(hidden, num_outputs, bias=bias)

    @property
    def recurrent_weight(self) -> nn.Parameter:
        """:math:`W_{hh}` of the first layer, ``(hidden, hidden)``."""
        return self.rnn.weight_hh_l0

    @property
    def input_weight(self) -> nn.Parameter:
        """:math:`W_{ih}` of the first layer, ``(hidden, input_size)``."""
        return self.rnn.weight_ih_l0

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(N, T, d)``; ``h0``: optional initial state ``(layers, N, hidden)``."""
        if x.dim() != 3:
            raise ConfigError(f"rnn: inputs must be (N, T, d). Got shape {tuple(x.shape)}.")
        h, _ = self.rnn(x, h0)
        return self.out(h[:, -1] if self.readout == "last" else h)


def rnn(input_shape: tuple[int, ...], num_outputs: int, *, hidden: int = 32, layers: int = 1,
        nonlinearity: Literal["tanh", "relu"] = "tanh", bias: bool = True,
        readout: Literal["last", "all"] = "last") -> ElmanRNN:
    """An :class:`ElmanRNN` for inputs of shape ``(T, d)`` (the length T may vary at run
    time; only d is fixed).

    Deviations from the paper: the recurrence is :class:`torch.nn.RNN` (tanh or ReLU, with biases)
    with a linear readout; the defaults (``hidden = 32``, one layer) are this library's, not the
    paper's network sizes (not re-read for this paragraph).
    """
    if len(input_shape) != 2:
        raise ConfigError("rnn: input_shape must be (T, d) (sequence length, features). "
                          f"Got {tuple(input_shape)} instead.")
    return ElmanRNN(input_shape[-1], num_outputs, hidden=hidden, layers=layers,
                    nonlinearity=nonlinearity, bias=bias, readout=readout)


MODELS.register("rnn", rnn, papers=(31,),
                summary="Elman (vanilla tanh/ReLU) RNN with a linear readout of the last state")
