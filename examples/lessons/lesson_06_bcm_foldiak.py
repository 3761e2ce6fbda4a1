"""
6. BCM's sliding threshold, and Földiák's lateral decorrelation
================================================================

Two classic answers to "how does a unit become selective?".

**BCM** (Bienenstock, Cooper & Munro 1982, in Intrator & Cooper's form): a synapse is strengthened when the unit's
response :math:`y` is above a threshold :math:`\\theta` and weakened below it, and the threshold slides with the
unit's own recent activity:

.. math::

    \\Delta w_k = \\frac{1}{S}\\sum_n y_k (y_k - \\theta_k)\\, x, \\qquad
    \\theta_k \\leftarrow \\theta_k + \\tfrac{1}{\\tau}\\big(\\overline{y_k^2} - \\theta_k\\big).

A unit that responds to everything raises its threshold until most inputs depress it; only the inputs that drive
it hardest keep strengthening it. **What to look for**: :math:`\\theta` tracking :math:`\\overline{y^2}`, and the
responses becoming *sparser*: each unit answers strongly to few images (a higher selectivity index).

**Földiák** (1990): binary units with Hebbian feed-forward weights, anti-Hebbian lateral weights between units
that fire together more often than chance (:math:`p^2`), and thresholds that move every unit's firing rate to
:math:`p`. The lateral weights and thresholds live in the layer (:class:`~hebbian.models.FoldiakLayer`, model
``foldiak_fc``), which settles its recurrent dynamics in its forward pass. **What to look for**: firing rates
pulled to :math:`p = 1/8`, and the correlations between units shrinking: a sparse, decorrelated code.
"""

# %%
import matplotlib.pyplot as plt
import torch
from ignite.engine import Events

from hebbian import Local, create_rule
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.models import create_model
from hebbian.trainers import HebbianTrainer

train = load_dataset("digits")
train = center(train, *pixel_stats(train))
images = train.tensors[0]


def unit_norm_start(weight: torch.Tensor) -> None:
    with torch.no_grad():
        weight.copy_(torch.nn.functional.normalize(torch.randn_like(weight), dim=1))


def selectivity(responses: torch.Tensor) -> torch.Tensor:
    """Treves-Rolls lifetime sparseness of each unit, 1 - E[y]^2 / E[y^2] over the images (0: answers every image
    alike, towards 1: answers few)."""
    return 1 - responses.mean(0) ** 2 / (responses ** 2).mean(0).clamp_min(1e-12)


# %%
# BCM
# ---
torch.manual_seed(0)
model = create_model("krotov_fc", input_size=8, width=0.01)  # 64 -> 20 -> 10
unit_norm_start(model.linear1.weight)


def relu_responses() -> torch.Tensor:
    """Every unit's rectified response to every training image, (images, 20)."""
    return torch.relu(images.flatten(1) @ model.linear1.weight.detach().T)


before = selectivity(relu_responses())
trainer = HebbianTrainer(model, create_rule("bcm", tau=5), Local(model.parameters(), lr=0.002))
bcm = trainer.bindings[0].rule  # the layer's own copy of the rule: it holds the thresholds θ
thresholds, mean_squares = [], []


@trainer.on(Events.ITERATION_COMPLETED)
def record(_):
    thresholds.append(bcm.theta.detach().clone())
    mean_squares.append((relu_responses() ** 2).mean(0))


trainer.run(in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=10)
after = selectivity(relu_responses())

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for k, colour in zip((0, 1, 2), ("tab:blue", "tab:orange", "tab:green")):
    axes[0].plot([t[k] for t in thresholds], color=colour, label=f"θ of unit {k}")
    axes[0].plot([m[k] for m in mean_squares], color=colour, ls=":", label=f"mean y² of unit {k}")
axes[0].set(title="the sliding threshold follows E[y²]", xlabel="batch", yscale="log")
axes[0].legend(fontsize="x-small", ncol=2, loc="lower right")
axes[1].scatter(before, after)
axes[1].plot([0, 1], [0, 1], color="k", lw=0.8)
axes[1].set(title="selectivity of each unit", xlabel="before training", ylabel="after BCM", xlim=(0, 1), ylim=(0, 1))
fig.tight_layout()
print(f"BCM: median selectivity {before.median():.2f} -> {after.median():.2f}; "
      f"units more selective than at the start: {int((after > before).sum())} of 20")

# %%
# Földiák
# -------
torch.manual_seed(0)
model = create_model("foldiak_fc", input_size=8, width=0.01)  # Flatten -> FoldiakLayer(64, 20) -> Linear
unit_norm_start(model.lateral1.weight)
layer = model.lateral1


def firing() -> torch.Tensor:
    with torch.no_grad():
        return layer(images.flatten(1))  # binary outputs after the lateral dynamics settle, (images, 20)


def mean_abs_correlation(y: torch.Tensor) -> float:
    c = torch.corrcoef(y.T).nan_to_num()
    return float(c.fill_diagonal_(0).abs().sum() / (c.numel() - len(c)))


start = firing()
rule = create_rule("foldiak", alpha=0.5, gamma=0.1, p=0.125)
trainer = HebbianTrainer(model, {"lateral1": rule}, Local([layer.weight], lr=0.02))
trainer.run(in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=10)
end = firing()

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
axes[0].bar(torch.arange(20) - 0.2, start.mean(0), 0.4, label="before")
axes[0].bar(torch.arange(20) + 0.2, end.mean(0), 0.4, label="after")
axes[0].axhline(0.125, color="k", ls="--", lw=0.8, label="p = 1/8")
axes[0].set(title="firing rate of each unit", xlabel="unit")
axes[0].legend(fontsize="small")
for ax, y, name in ((axes[1], start, "before"), (axes[2], end, "after")):
    image = ax.imshow(torch.corrcoef(y.T).nan_to_num().fill_diagonal_(0), vmin=-0.5, vmax=0.5, cmap="RdBu_r")
    ax.set(title=f"correlation between units, {name}", xlabel="unit", ylabel="unit")
fig.colorbar(image, ax=axes[1:], shrink=0.8)
print(f"Földiák: mean firing rate {start.mean():.3f} -> {end.mean():.3f} (target 0.125); mean |correlation| "
      f"between units {mean_abs_correlation(start):.3f} -> {mean_abs_correlation(end):.3f}; "
      f"lateral weights all inhibitory: {bool((layer.lateral <= 0).all())}")

# %%
# Why
# ---
# BCM's threshold is a homeostatic variable: it rises quadratically with a unit's activity, so a unit cannot
# potentiate on everything; inputs that drive it above :math:`\theta` win and the others lose, which sharpens its
# tuning. The threshold must slide faster than the weights move (small ``lr``, short ``tau``), or the cubic
# update runs away. Földiák's lateral weights grow inhibitory exactly between units that fire together more than
# :math:`p^2` would explain, so co-active units suppress each other until their firing is close to independent; the
# thresholds turn each unit's rate to :math:`p`, a sparse code. Both are local: every quantity is a unit's own
# activity, its inputs, or a pair of units' joint activity.
