"""
5. SoftHebb: soft competition and adaptive rates
================================================

SoftHebb (Journé et al., ICLR 2023) replaces the ranking of lesson 4 with a softmax and makes every loser
anti-Hebbian:

.. math::

    y = \\mathrm{softmax}(t_{inv}\\, u), \\qquad \\tilde y_{k^*} = y_{k^*},\\ \\tilde y_{k \\ne k^*} = -y_k,
    \\qquad \\Delta w_k = \\tilde y_k\\,(x - u_k w_k),

normalised by its largest element, with a per-unit learning rate that shrinks as the unit approaches the unit
sphere: :math:`\\eta_k \\propto |\\,\\|w_k\\| - 1\\,|^{q}` (``q = 0.5``). Units start on a sphere of radius 25 (the
paper's initialisation), far from where they will end.

**What to look for**: the norms of all units fall from 25 towards 1, fast at first and then ever more slowly: the
rate is adaptive, so a unit stops moving once it has converged and no learning-rate schedule is needed. And the
inverse temperature :math:`t_{inv}`: small, the softmax is nearly uniform and all units learn nearly the same
blurry average; large, it approaches a hard winner-take-all and the units become distinct prototypes.
"""

# %%
import matplotlib.pyplot as plt
import torch
from ignite.engine import Events

from hebbian import Local, create_rule
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.models import create_model
from hebbian.probes import create_probe
from hebbian.rules import softhebb_init_
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import plot_filter_comparison

train, test = load_dataset("digits"), load_dataset("digits", train=False)
mean, std = pixel_stats(train)
train, test = center(train, mean, std), center(test, mean, std)


def softhebb(t_inv: float, epochs: int = 10):
    """20 units trained by SoftHebb at inverse temperature ``t_inv``; returns the model, start and norm history."""
    torch.manual_seed(0)
    model = create_model("krotov_fc", input_size=8, width=0.01)
    softhebb_init_(model.linear1.weight)  # N(0, 1) rows scaled to norm 25
    start = model.linear1.weight.detach().clone()
    trainer = HebbianTrainer(model, create_rule("softhebb", t_inv=t_inv), Local(model.parameters(), lr=0.05))
    norms = [start.norm(dim=1)]
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda _: norms.append(model.linear1.weight.detach().norm(dim=1)))
    trainer.run(in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=epochs)
    return model, start, torch.stack(norms)


runs = {t: softhebb(t) for t in (0.1, 1.0, 10.0)}

# %%
# Adaptive rates: the norms
# -------------------------
fig, ax = plt.subplots(figsize=(7, 3.6))
_, _, norms = runs[1.0]
ax.semilogy(norms, color="tab:blue", alpha=0.5)
ax.axhline(1.0, color="k", lw=0.8, ls="--")
ax.set(title="‖w_k‖ of the 20 units (t_inv = 1)", xlabel="batch", ylabel="norm (log scale)")
fig.tight_layout()
print("median unit norm after 1, 5 and 10 epochs:",
      [round(float(norms[i * 23].median()), 2) for i in (1, 5, 10)])

# %%
# The temperature
# ---------------
fig, axes = plot_filter_comparison({f"t_inv = {t}": m.linear1.weight.detach() for t, (m, _, _) in runs.items()},
                                   input_shape=(1, 8, 8), panel_size=3.2)

# %%
# Are the features better? Each model's hidden layer read out by the package's logistic probe (standardised
# features, logistic regression to convergence), against the same probe on the untrained weights (the control).
loaders = (in_memory_loader(train, 512, shuffle=False), in_memory_loader(test, 512, shuffle=False))
for t, (model, start, _) in runs.items():
    trained = create_probe("logistic", model).run(*loaders)["test_accuracy"]
    with torch.no_grad():
        model.linear1.weight.copy_(start)
    control = create_probe("logistic", model).run(*loaders)["test_accuracy"]
    print(f"t_inv = {t}: probe {100 * trained:.1f}% vs control {100 * control:.1f}%")

# %%
# Why
# ---
# The softmax's temperature sets how many units share an image: at :math:`t_{inv} = 0.1` the drives, a few units
# apart, give almost equal shares and every unit follows the same average, so the features are nearly redundant;
# at 10 the winner takes nearly all and the units specialise. The losers' anti-Hebbian term pushes units off images
# that another unit already claims. The rate :math:`|\|w\| - 1|^q` is large far from the sphere and vanishes on it:
# a unit's learning slows exactly when its norm has converged, which is what the flattening curves show.
