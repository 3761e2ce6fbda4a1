"""
3. Competition: units become prototypes, and some die
=====================================================

Principal components are global. Competition makes units specialise: only the unit with the largest drive (the
winner) learns from an image, and it moves towards it (Grossberg's instar):

.. math:: y_k = [k = \\arg\\max_j u_j], \\qquad \\Delta w_k = \\eta\\, y_k\\, (x - w_k).

Each unit tends to the mean of the images it wins: online k-means. Competitive Oja replaces :math:`x - w_k` by Oja's
:math:`x - u_k w_k` and, by default, the hard winner by a softmax :math:`y = \\mathrm{softmax}(t_{inv} u)`, so every
unit learns a little from every image, in proportion to how well it matches.

**What to look for**: after training, the filters look like digits (prototypes), not noise. And the bar chart of
how many training images each unit wins: with the hard winner some units win *nothing*. They never learn, because
they never win, and they never win, because they never learned: *dead units*. The soft competition has none.
"""

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from hebbian import Local, create_rule
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.models import create_model
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import plot_filter_comparison

train = load_dataset("digits")
train = center(train, *pixel_stats(train))
images = train.tensors[0]


def compete(rule, lr: float, epochs: int = 10):
    """A 20-unit layer (``krotov_fc`` at width 0.01) trained by ``rule`` from unit-norm random weights."""
    torch.manual_seed(0)
    model = create_model("krotov_fc", input_size=8, width=0.01)  # 64 -> 20 -> 10
    with torch.no_grad():
        model.linear1.weight.copy_(nn.functional.normalize(torch.randn(20, 64), dim=1))
    start = model.linear1.weight.detach().clone()
    trainer = HebbianTrainer(model, rule, Local(model.parameters(), lr=lr))
    trainer.run(in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=epochs)
    return start, model.linear1.weight.detach()


def wins(weight):
    """How many training images each unit wins (largest drive u = w . x)."""
    winners = (images.flatten(1) @ weight.T).argmax(dim=1)
    return torch.bincount(winners, minlength=weight.shape[0])


start, instar = compete(create_rule("instar", competition="hard"), lr=0.01)
_, soft_oja = compete(create_rule("competitive_oja", competition="soft"), lr=0.2)

# %%
# Prototypes
# ----------
fig, axes = plot_filter_comparison({"random start": start, "instar (hard WTA)": instar,
                                    "competitive Oja (soft)": soft_oja}, input_shape=(1, 8, 8), panel_size=3.2)

# %%
# Who wins what
# -------------
fig, ax = plt.subplots(figsize=(9, 3.2))
width = 0.4
for shift, (name, w) in zip((-width / 2, width / 2), (("instar (hard WTA)", instar),
                                                      ("competitive Oja (soft)", soft_oja))):
    ax.bar(torch.arange(20) + shift, wins(w), width, label=name)
ax.set(xlabel="unit", ylabel="training images won", title="wins per unit (0: a dead unit)", xticks=range(20))
ax.legend()
fig.tight_layout()

for name, w in (("instar (hard WTA)", instar), ("competitive Oja (soft)", soft_oja)):
    print(f"{name}: {int((wins(w) == 0).sum())} of 20 units win no training image")

# %%
# Why
# ---
# With a hard winner, a unit whose random start is far from every image loses every competition and receives no
# update at all: it stays where it started forever (compare its tile with the random start). A unit that wins a
# little keeps winning, the rich get richer. Remedies all give losers a chance: a soft winner (every unit learns in
# proportion to its softmax share, as competitive Oja does here), a "conscience" or adaptive threshold that
# handicaps frequent winners (lesson 6's Földiák rule), initialising the units on data, or learning from the
# k-th ranked unit too (Krotov-Hopfield, lesson 4). ``hebbian compare`` reports dead units for every rule.
