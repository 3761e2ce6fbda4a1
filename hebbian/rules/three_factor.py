"""Three-factor rules whose third factor is computed per sample: the shared machinery.

A :class:`ThreeFactorRule` pairs a local post-synaptic term with a :class:`~hebbian.rules.modulation.Modulator` of
scope ``"sample"`` or ``"unit"``:

.. math:: \\Delta W_k = \\frac1S \\sum_{n,p} M_{n,k}\\; \\mathrm{post}_{n,k,p}\\; P_{n,p}

(one batch-aggregated correlation, :meth:`LayerView.correlate`, of the input with the gated post-synaptic term).
The modulator computes :math:`M` from a :class:`~hebbian.rules.modulation.Broadcast`, the network's output and the
labels on the batch. A trainer sends it to every bound layer before their statistics (:meth:`ThreeFactorRule.receive`,
see :mod:`hebbian.trainers.modulation`); a rule that has received none (``rule.update(layer, x, u, labels=...)``)
treats its layer as the network's output layer: the layer's own output (plus its bias; averaged over the positions of
a convolution) is the network's output.

Rules register with ``needs_labels=True, needs_output=True``. The modulator's state tensors are the rule's too
(``state_tensors`` lists both; ``state_dict`` saves both).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from hebbian.rules.base import LearningRule, check_choice
from hebbian.rules.layers import LayerView
from hebbian.rules.modulation import Broadcast, Modulator

#: Post-synaptic non-linearities f of the layer (applied by the model after the layer), for f(u) and f'(u).
ACTIVATIONS = ("identity", "relu", "tanh", "sigmoid")


def activation(u: Tensor, name: str) -> Tensor:
    """:math:`f(u)` as a new tensor."""
    if name == "relu":
        return torch.relu(u)
    if name == "tanh":
        return torch.tanh(u)
    if name == "sigmoid":
        return torch.sigmoid(u)
    return u.clone()


def derivative(u: Tensor, name: str) -> Tensor:
    """:math:`f'(u)` as a new tensor."""
    if name == "relu":
        return (u > 0).to(u.dtype)
    if name == "tanh":
        return 1.0 - torch.tanh(u).square_()
    if name == "sigmoid":
        s = torch.sigmoid(u)
        return s * (1.0 - s)
    return torch.ones_like(u)


def check_activation(value: str) -> str:
    return check_choice("activation", value, ACTIVATIONS)


def per_sample(m: Tensor, u: Tensor) -> Tensor:
    """A factor per sample ``(N,)`` or per sample and unit ``(N, M)``, shaped to broadcast against a prepared ``u``:
    ``(S, 1 | M)`` for a linear layer (the ``S = N T`` rows of sample ``n`` are contiguous) or ``(N, 1 | M, 1, ..)``
    for a convolution."""
    m = m.unsqueeze(1) if m.dim() == 1 else m
    if u.dim() == 2:
        rows = u.shape[0] // m.shape[0]
        return m if rows == 1 else m.repeat_interleave(rows, dim=0)
    return m.reshape(tuple(m.shape) + (1,) * (u.dim() - 2))


def pre_activation(view: LayerView, u: Tensor) -> Tensor:
    """The layer's output with its bias, from the prepared bare drive ``u`` (what the model's non-linearity sees)."""
    if view.bias is None:
        return u
    return u + view.bias.reshape((1, -1) + (1,) * (u.dim() - 2)).to(u.dtype)


def own_output(view: LayerView, u: Tensor) -> Tensor:
    """The layer's output as the network's output ``(N, M)``: ``u`` plus the bias, averaged over conv positions."""
    out = pre_activation(view, u)
    return out if out.dim() == 2 else out.flatten(2).mean(dim=2)


class ThreeFactorRule(LearningRule):
    """Base class of the rules gated per sample by a modulator fed from a :class:`Broadcast` (see the module)."""

    modulator: Modulator
    _received: Optional[Broadcast] = None

    def check_layer(self, layer):  # type: ignore[override]
        if not (self.info.needs_output and self.info.needs_labels):
            raise TypeError(f"rule {self.info.name!r} is a three-factor rule: register it with needs_output=True and "
                            "needs_labels=True, so that trainers broadcast the network's output and labels to it")
        return super().check_layer(layer)

    # ------------------------------------------------------------------ the broadcast
    def receive(self, broadcast: Optional[Broadcast]) -> None:
        """The broadcast of the next :meth:`statistics` calls (``None``: the layer is the network's output layer)."""
        self._received = broadcast

    def broadcast_for(self, view: LayerView, u: Tensor, labels: Optional[Tensor]) -> Broadcast:
        """The received broadcast, or (none received) the layer's own output as the network's, with the labels."""
        if self._received is not None:
            received = self._received
            if u.shape[0] % received.output.shape[0]:
                raise ValueError(f"rule {self.info.name!r}: the layer's output has {u.shape[0]} rows, not a multiple "
                                 f"of the network's {received.output.shape[0]} samples")
            return received
        assert labels is not None, "check_extras ensures labels"
        return Broadcast(own_output(view, u), labels, "", True)

    def check_extras(self, view, x, labels, grad) -> None:  # type: ignore[override]
        super().check_extras(view, x, labels, grad)
        if self._received is not None:
            return
        # update() on one layer: it is the network's output layer, one unit per class, one output per sample
        if not view.is_conv and x.dim() != 2:
            raise ValueError(f"rule {self.info.name!r} on one layer (the network's output layer): x must have shape "
                             f"(N, D), got {tuple(x.shape)}")
        if labels.numel() and not bool(((labels >= 0) & (labels < view.num_neurons)).all()):  # one sync
            raise ValueError(f"labels must lie in [0, {view.num_neurons}) (the layer is the network's output layer, "
                             f"one unit per class), got values in [{int(labels.min())}, {int(labels.max())}]")

    # ------------------------------------------------------------------ state: the rule's and the modulator's
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if "hyperparameters" not in state_dict:
            raise KeyError("state_dict has no 'hyperparameters' entry; was it saved by LearningRule.state_dict()?")
        self.modulator = type(self)(**state_dict["hyperparameters"]).modulator  # its hyperparameters, then its state
        super().load_state_dict(state_dict)

    def clone(self) -> "ThreeFactorRule":
        twin = super().clone()
        twin._received = None
        return twin  # type: ignore[return-value]


def modulator_attribute(name: str) -> property:
    """A rule attribute that is the modulator's attribute ``name`` (a hyperparameter or state tensor), so that the
    rule's ``hyperparameters``, ``state_dict`` and ``repr`` hold it."""
    return property(lambda self: getattr(self.modulator, name),
                    lambda self, value: setattr(self.modulator, name, value),
                    doc=f"The modulator's ``{name}``.")
