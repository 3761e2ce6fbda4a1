"""
4. Krotov-Hopfield: the anti-Hebbian rank-k term, and filters over training
===========================================================================

Krotov & Hopfield (PNAS 2019) rank the units by their drive on each image; the winner learns, the unit ranked
:math:`k` *unlearns* with strength :math:`\\Delta`, all others do nothing:

.. math::

    g_k = \\begin{cases}1 & \\text{rank 1}\\\\ -\\Delta & \\text{rank } k\\\\ 0 & \\text{otherwise}\\end{cases},
    \\qquad \\Delta w_k = g_k\\,\\big(x - \\langle w_k, x\\rangle_p\\, w_k\\big),
    \\qquad \\langle w, x\\rangle_p = \\sum_i \\mathrm{sign}(w_i)|w_i|^{p-1} x_i ,

and the batch update is divided by its largest element. The decay term keeps every unit on the unit sphere of the
:math:`p`-norm.

**What to look for**: the strip of filters at several epochs (drawn by the package's
:class:`~hebbian.visualizers.FilterSnapshots` and :func:`~hebbian.visualizers.plot_filters_over_training`): random
noise at epoch 0, digit-like prototypes a few epochs later, then refinement. And the effect of the anti-Hebbian
term: without it (:math:`\\Delta = 0`) several units become near copies of the same prototype; with it the unit
that came second pushes away from the image its rival won, so units spread over more of the digits' variety.
"""

# %%
import matplotlib.pyplot as plt
import torch

from hebbian import Local, create_rule
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.models import create_model
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import FilterSnapshots, plot_filters_over_training

train = load_dataset("digits")
train = center(train, *pixel_stats(train))
EPOCHS = 12


def krotov(delta: float):
    """100 units (``krotov_fc`` at width 0.05) trained by Krotov's rule, p = 3, k = 7; weights kept at chosen epochs."""
    torch.manual_seed(0)
    model = create_model("krotov_fc", input_size=8, width=0.05)  # 64 -> 100 -> 10
    torch.nn.init.normal_(model.linear1.weight)  # Krotov-Hopfield's N(0, 1) start
    trainer = HebbianTrainer(model, create_rule("krotov", p=3, k=7, delta=delta), Local(model.parameters(), lr=0.2))
    snapshots = FilterSnapshots(model.linear1, steps=[0, 1, 2, 4, 8, EPOCHS]).attach(trainer)
    trainer.run(in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=EPOCHS)
    return snapshots


with_anti = krotov(delta=0.4)
without = krotov(delta=0.0)

# %%
# Filters over training
# ---------------------
# The first 25 units at epochs 0, 1, 2, 4, 8 and 12 (every tile scaled on its own).
fig, axes = plot_filters_over_training(with_anti.weights, input_shape=(1, 8, 8), max_filters=25, ncols=3,
                                       panel_size=3.2, title="Krotov-Hopfield, Δ = 0.4")

# %%
# The same for a saved run, from the command line: train with checkpoints kept at every epoch, then draw them as a
# strip or as an animated GIF::
#
#     hebbian train compare_digits --rule krotov --set checkpoint.every=1 --set checkpoint.n_saved=10
#     hebbian visualize runs/compare_digits-<time> --over-training                  # filters_over_training.png
#     hebbian visualize runs/compare_digits-<time> --over-training -o filters.gif   # an animation
#
# In Python, :func:`~hebbian.visualizers.save_filter_animation` writes the GIF of the same snapshots.

# %%
# What the anti-Hebbian term does
# -------------------------------
# Near copies: pairs of units whose weights have a cosine above 0.8; and, for every unit, the cosine with its most
# similar other unit (its nearest neighbour), averaged over the units.


def near_copies(weight: torch.Tensor, above: float = 0.8) -> int:
    w = torch.nn.functional.normalize(weight.flatten(1), dim=1)
    cos = w @ w.T
    return int((cos.triu(diagonal=1) > above).sum())


fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for ax, (name, snaps) in zip(axes, (("Δ = 0.4", with_anti), ("Δ = 0 (no anti-Hebbian term)", without))):
    w = torch.nn.functional.normalize(snaps.weights[EPOCHS].flatten(1), dim=1)
    cos = (w @ w.T).fill_diagonal_(float("nan"))
    ax.hist(cos[~cos.isnan()].numpy(), bins=40, range=(-1, 1), color="tab:blue" if "0.4" in name else "tab:red")
    ax.set(title=f"{name}: {near_copies(snaps.weights[EPOCHS])} pairs above 0.8",
           xlabel="cosine between two units", ylabel="pairs")
fig.tight_layout()
for name, snaps in (("delta 0.4", with_anti), ("delta 0", without)):
    w = torch.nn.functional.normalize(snaps.weights[EPOCHS].flatten(1), dim=1)
    nearest = (w @ w.T).fill_diagonal_(-1).max(dim=1).values.mean()
    print(f"{name}: {near_copies(snaps.weights[EPOCHS])} pairs of units with cosine > 0.8 after {EPOCHS} epochs; "
          f"mean cosine with the nearest other unit {nearest:.2f}")

# %%
# All 100 units after 12 epochs, with and without the anti-Hebbian term.
fig, axes = plot_filters_over_training({"Δ = 0.4": with_anti.weights[EPOCHS], "Δ = 0": without.weights[EPOCHS]},
                                       input_shape=(1, 8, 8), max_filters=100, panel_size=5)

# %%
# Why
# ---
# With the winner alone, a prototype that wins many images pulls other units that start near it into the same
# basin (they win the images it does not quite fit, and drift towards it). The rank-:math:`k` unit is a unit that
# responds strongly but not best: pushing it away from the image (:math:`g_k = -\Delta`) decorrelates the units,
# a competition between the winner's closest rivals that works like lateral inhibition. The max-abs normalisation
# makes the step size independent of the input's scale, and the :math:`p`-norm decay keeps the weights bounded
# (lesson 1's problem, solved like Oja's).
