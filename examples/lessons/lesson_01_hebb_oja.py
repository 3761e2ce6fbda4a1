"""
1. Hebb's rule grows without bound; Oja's does not
===================================================

Hebb's postulate, "cells that fire together wire together", is the update

.. math:: \\Delta w = \\eta\\, u\\, x, \\qquad u = w \\cdot x .

Averaged over the data, :math:`\\dot w = C w` with :math:`C` the input covariance: the weight turns towards the top
eigenvector of :math:`C` but its norm grows like :math:`e^{\\lambda_1 t}`. Oja (1982) added a decay term that is
local too (it uses only :math:`u` and the unit's own weight):

.. math:: \\Delta w = \\eta\\, u\\, (x - u\\, w),

whose fixed points are the unit-norm eigenvectors, the stable one being the first principal component.

**What to look for**: on the same data, from the same initial weights and at the same learning rate, Hebb's norm
climbs steadily on a log scale while Oja's settles at 1; both turn towards the first principal component (the cosine
climbs towards 1, slowly, because the digits' first two eigenvalues are close). That the direction is the same
and only the norm differs is the whole point of Oja's term.
"""

# %%
# Data and model
# --------------
# scikit-learn's 8x8 digits (bundled, no download), every pixel centred so that the covariance is what the rules
# see. The model is a bias-free linear layer of 4 units followed by a readout (the trainer leaves the last child, the
# readout, alone); ``HebbianTrainer`` trains the layer named ``"1"`` with the rule we give it.
import matplotlib.pyplot as plt
import torch
from ignite.engine import Events
from torch import nn

from hebbian import Local, create_rule
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.trainers import HebbianTrainer

torch.manual_seed(0)
train = load_dataset("digits")
train = center(train, *pixel_stats(train))  # zero mean at every pixel, unit overall variance
pixels = train.tensors[0].flatten(1)  # (1437, 64)
first_pc = torch.linalg.svd(pixels, full_matrices=False).Vh[0]  # the direction both rules should find

initial = nn.functional.normalize(torch.randn(4, 64), dim=1)  # the same unit-norm start for both rules


def train_rule(name: str, lr: float, epochs: int = 8):
    """Train 4 units with rule ``name``; return the norm and |cos(w, PC1)| of every unit after every batch."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4, bias=False), nn.Linear(4, 10))
    with torch.no_grad():
        model[1].weight.copy_(initial)
    trainer = HebbianTrainer(model, {"1": create_rule(name)}, Local(model[1].parameters(), lr=lr))
    norms, cosines = [], []

    @trainer.on(Events.ITERATION_COMPLETED)
    def record(_):
        w = model[1].weight.detach()
        norms.append(w.norm(dim=1))
        cosines.append((w @ first_pc).abs() / w.norm(dim=1))

    trainer.run(in_memory_loader(train, batch_size=32, generator=torch.Generator().manual_seed(0)),
                max_epochs=epochs)
    return torch.stack(norms), torch.stack(cosines)


hebb_norm, hebb_cos = train_rule("hebb", lr=0.005)
oja_norm, oja_cos = train_rule("oja", lr=0.005)

# %%
# The weight norm over time
# -------------------------
# One line per unit. The log scale turns Hebb's exponential growth into a straight climb.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for norm, cos, name, colour in ((hebb_norm, hebb_cos, "Hebb", "tab:red"), (oja_norm, oja_cos, "Oja", "tab:blue")):
    axes[0].semilogy(norm, color=colour, alpha=0.7, label=[name] + [None] * 3)
    axes[1].plot(cos, color=colour, alpha=0.7, label=[name] + [None] * 3)
axes[0].set(title="weight norm ‖w‖ of each unit", xlabel="batch", ylabel="‖w‖")
axes[1].set(title="|cos(w, first principal component)|", xlabel="batch", ylim=(0, 1.05))
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3)
fig.tight_layout()

print(f"after {len(hebb_norm)} batches: Hebb's norms {hebb_norm[-1].min():.1f} to {hebb_norm[-1].max():.1f}, "
      f"Oja's {oja_norm[-1].min():.3f} to {oja_norm[-1].max():.3f}")
print(f"|cos| with the first principal component: Hebb {hebb_cos[-1].min():.3f}, Oja {oja_cos[-1].min():.3f} "
      "(the smallest over the 4 units)")

# %%
# Why
# ---
# Hebb's update is always along :math:`u x`, so once the weight has a component along the first principal
# component, every batch lengthens it by a factor of about :math:`1 + \eta \lambda_1`: growth without bound (with a
# larger learning rate the weights overflow within an epoch; the trainer stops a run whose weights pass
# ``max_abs_weight``). Oja's extra term :math:`-\eta u^2 w` shrinks the weight exactly as much as the Hebbian term
# lengthens it when :math:`\|w\| = 1`. Note that all 4 Oja units learn the *same* direction: independent units
# have no reason to differ. Lesson 2 fixes that.
