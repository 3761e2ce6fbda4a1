# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Hebbian learning, step by step
#
# From the oldest local learning rule to GHL, each step with its equation, the few lines of code that run it with
# `hebbian`, and what the neurons learned. Everything runs on a laptop CPU in well under a minute: synthetic
# Gaussians and scikit-learn's bundled 8x8 digits, no download.
#
# | step | rule | update of unit $k$ (input $x$, drive $u_k = w_k \cdot x$) |
# |---|---|---|
# | 1 | Hebb | $\Delta w = \eta\, u\, x$ |
# | 2 | Oja | $\Delta w = \eta\, u\,(x - u\, w)$ |
# | 3 | Sanger (GHA) | $\Delta w_i = \eta\, u_i\,(x - \sum_{k \le i} u_k w_k)$ |
# | 4 | competition: instar + hard WTA | $\Delta w_k = \eta\, y_k\,(x - w_k)$, $y_k = [k = \arg\max_j u_j]$ |
# | 5 | Krotov-Hopfield, SoftHebb | rank- or softmax-gated, anti-Hebbian losers, max-abs normalised |
# | 6 | GHL | $\Delta W = -\eta\, |\hat\Delta| \odot \mathrm{sign}(\partial L / \partial W)$ |
#
# A rule in `hebbian` is an object that turns a layer's input and output into $\Delta W$ (`rule.update(layer, x, u)`);
# trainers apply it batch after batch. See `docs/rules.md` for the full equations and their sources.

# %%
import matplotlib.pyplot as plt
import torch

import hebbian
from hebbian.data import load_dataset
from hebbian.visualizers import plot_filters

torch.manual_seed(0)
print("rules:", ", ".join(hebbian.list_rules()))

# %% [markdown]
# Synthetic data: 2-D Gaussian samples with covariance $C$ whose first principal component $e_1$ points at about
# 22 degrees.

# %%
C = torch.tensor([[3.0, 1.0], [1.0, 1.0]])
X = torch.randn(4000, 2) @ torch.linalg.cholesky(C).T
eigenvalues, eigenvectors = torch.linalg.eigh(C)
e1 = eigenvectors[:, -1]
print("eigenvalues", eigenvalues.tolist(), "e1", e1.tolist())


def train_unit(rule, lr, steps=400, batch=10, units=1, dim=2, data=X):
    """Run `rule` on a bias-free linear layer; return the layer and its weight after every step."""
    layer = torch.nn.Linear(dim, units, bias=False)
    torch.nn.init.normal_(layer.weight, std=0.3)
    history = []
    for step in range(steps):
        x = data[torch.randint(len(data), (batch,))]
        delta = rule.update(layer, x, layer(x))  # the rule's  ΔW  for this batch
        with torch.no_grad():
            layer.weight += lr * delta  # W <- W + η ΔW   (what hebbian.optim.Local does)
        history.append(layer.weight.detach().clone())
    return layer, torch.stack(history)


# %% [markdown]
# ## 1. Hebb: "cells that fire together wire together"
#
# $$\Delta w = \eta\, u\, x, \qquad u = w \cdot x$$
#
# On average $\dot w = C w$: the weight turns towards the top eigenvector $e_1$ of the input covariance, but its
# norm grows like $e^{\lambda_1 t}$. Plain Hebb is unstable.

# %%
_, hebb = train_unit(hebbian.create_rule("hebb"), lr=0.005)
_, oja = train_unit(hebbian.create_rule("oja"), lr=0.005)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for name, h in (("Hebb", hebb), ("Oja", oja)):
    w = h[:, 0]
    axes[0].semilogy(w.norm(dim=1), label=name)
    axes[1].plot((w @ e1).abs() / w.norm(dim=1), label=name)
axes[0].set(title="|w|", xlabel="step")
axes[1].set(title="|cos(w, e1)|", xlabel="step", ylim=(0, 1.05))
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()
print(f"after 400 steps: |w| Hebb = {hebb[-1].norm():.1f}, Oja = {oja[-1].norm():.3f}")

# %% [markdown]
# ## 2. Oja: Hebb with a built-in forgetting term
#
# $$\Delta w = \eta\, u\,(x - u\, w)$$
#
# The decay term $-\eta u^2 w$ keeps $\|w\| \to 1$ while the Hebbian term still finds $\pm e_1$: one Oja neuron
# computes the first principal component (above, orange). Oja neurons are independent, so *several* of them all
# learn the same $e_1$. Sanger's rule (the generalized Hebbian algorithm) lets neuron $i$ subtract what neurons
# $1..i$ already explain, and the neurons learn the principal components in order:
#
# $$\Delta w_i = \eta\, u_i \Big(x - \sum_{k \le i} u_k w_k\Big)$$
#
# On the digits (centred), the first 8 Sanger neurons become the first 8 "eigendigits":

# %%
digits = load_dataset("digits").tensors[0].flatten(1)  # (1437, 64) in [0, 1]
centred = digits - digits.mean(0)
sanger, _ = train_unit(hebbian.create_rule("sanger"), lr=0.2, steps=500, batch=128, units=8, dim=64,
                       data=centred)
pcs = torch.linalg.svd(centred, full_matrices=False).Vh[:8]
print("|cos| with the principal components:", (sanger.weight.detach() * pcs).sum(1).abs().round(decimals=2).tolist())
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
plot_filters(sanger.weight.detach(), (1, 8, 8), ax=axes[0], title="Sanger neurons")
plot_filters(pcs, (1, 8, 8), ax=axes[1], title="principal components (SVD)")
plt.show()

# %% [markdown]
# ## 3. Competition: winner-take-all
#
# PCA features are global. Competition makes neurons specialise: only the neuron with the largest drive (the
# winner) learns, and it moves towards the input (Grossberg's instar):
#
# $$y_k = [k = \arg\max_j u_j], \qquad \Delta w_k = \eta\, y_k\,(x - w_k)$$
#
# Each winner tends to the mean of the inputs it wins: online k-means. On three Gaussian clusters:

# %%
centres = torch.tensor([[2.0, 2.0], [-2.0, 1.0], [0.5, -2.5]])
clusters = torch.cat([c + 0.4 * torch.randn(500, 2) for c in centres])
instar, history = train_unit(hebbian.create_rule("instar", competition="hard"), lr=0.1, steps=300, batch=20,
                             units=3, data=clusters)
prototypes = instar.weight.detach()
plt.figure(figsize=(4, 4))
plt.scatter(*clusters.T, s=2, alpha=0.3)
for k in range(3):
    plt.plot(*history[:, k].T, "-", lw=1)
plt.scatter(*prototypes.T, c="k", marker="x", s=80, label="learned prototypes")
plt.legend()
plt.title("instar + hard WTA")
plt.show()
print("prototypes:", prototypes.round(decimals=2).tolist())

# %% [markdown]
# (Winner-take-all by the dot product $u_k = w_k \cdot x$ favours long weight vectors, which is why the rules below
# keep the norms in check.)
#
# ## 4. Krotov-Hopfield and SoftHebb: competition with anti-Hebbian losers
#
# **Krotov & Hopfield** (PNAS 2019) rank the units by their drive; the winner learns, the unit ranked $k$ *unlearns*
# with strength $\Delta$, and the weights converge to the unit sphere of the $p$-norm:
#
# $$g_k = \begin{cases}1 & \text{rank 1}\\ -\Delta & \text{rank } k\\ 0 & \text{otherwise}\end{cases}, \qquad
#   \Delta w_k = g_k\,\big(x - \langle w_k, x\rangle_p\, w_k\big), \qquad
#   \langle w, x\rangle_p = \sum_i \mathrm{sign}(w_i)|w_i|^{p-1} x_i$$
#
# **SoftHebb** (Journé et al., ICLR 2023) replaces the ranking with a softmax and makes every loser anti-Hebbian:
#
# $$y = \mathrm{softmax}(t_{inv}\, u), \quad \tilde y_{k^*} = y_{k^*},\ \tilde y_{k \ne k^*} = -y_k, \quad
#   \Delta w_k = \tilde y_k (x - u_k w_k)$$
#
# Both normalise the batch update by its largest element. Here a hidden layer of 20 units (the `krotov_fc` network
# at width 0.01, on digits with every pixel centred) learns for 10 epochs with the `hebbian` trainer, through the
# same `Experiment` and per-method recipe that `hebbian compare` uses. What to look for:
#
# * **the units move**: the median relative change of a unit's weights, $\lVert w - w_0\rVert / \lVert w_0\rVert$, is
#   far from 0;
# * **they become prototypes**: each unit's weights end up much closer (by cosine) to the mean of one digit class
#   than the random initial weights were, and the filters below look like (centred) digits, not noise;
# * **the features are better**: a linear probe on the learned features beats the same probe on the untrained
#   weights (the *control*: same model, same initial weights).

# %%
from hebbian.config import method_config, resolve_config
from hebbian.experiment import Experiment, load_data

QUICK = [("log.progress", False)]
data = load_data(resolve_config("compare_digits"))
x_train, y_train = data.train.tensors
class_means = torch.stack([x_train[y_train == c].flatten(1).mean(0) for c in range(10)])  # (10, 64)


def nearest_class_cosine(weight):
    """Median over units of the cosine between a unit's weights and the class mean it is closest to."""
    w = torch.nn.functional.normalize(weight.flatten(1), dim=1)
    return float((w @ torch.nn.functional.normalize(class_means, dim=1).T).max(dim=1).values.median())


def run_method(method):
    """Train one method with its recipe from the `compare_digits` config, as `hebbian compare` does."""
    exp = Experiment(method_config(resolve_config("compare_digits"), method, QUICK), data)
    control = exp.control()
    exp.fit()
    return exp, {**exp.evaluate(), **control}


results = {}
for method in ("krotov", "softhebb"):
    exp, metrics = run_method(method)
    results[method] = (exp, metrics)
    before, after = nearest_class_cosine(exp.initial_weights["linear1"]), nearest_class_cosine(exp.first_layer_weight())
    print(f"{method}: weight change {exp.weight_change()['linear1']:.2f}; cosine with the nearest class mean "
          f"{before:.2f} -> {after:.2f}; probe {100 * metrics['probe_test_accuracy']:.1f}% vs control "
          f"{100 * metrics['control_probe_test_accuracy']:.1f}%")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
plot_filters(results["krotov"][0].initial_weights["linear1"], (1, 8, 8), 20, ax=axes[0], title="initial (random)")
for ax, method in zip(axes[1:], ("krotov", "softhebb")):
    plot_filters(results[method][0].first_layer_weight(), (1, 8, 8), 20, ax=ax, title=method)
plt.show()

# %% [markdown]
# ## 5. GHL: Hebbian magnitude, global direction
#
# GHL (Hua et al., ICASSP 2026) keeps the *size* of a local soft-WTA Oja step and takes its *sign* from
# backpropagation:
#
# $$\Delta_k = \sum_n y_k (x - u_k w_k),\quad y = \mathrm{softmax}(t_{inv} u), \quad
#   \hat\Delta = \frac{\Delta}{\max|\Delta|}, \qquad
#   W \leftarrow W - \eta\, |\hat\Delta| \odot \mathrm{sign}\Big(\frac{\partial L}{\partial W}\Big)$$
#
# The Hebbian layer follows this rule and the classifier plain SGD, end to end; backprop trains the same network
# from the same initial weights. What to look for: both move the first layer's weights and reach a network test
# accuracy far above chance (10%). On this tiny network backprop ends ahead, and neither method's units become class
# templates the way Krotov's do: the global sign makes the filters discriminative (the cosine with the nearest
# class mean stays well below Krotov's), which is what the printed numbers show.

# %%
for method in ("ghl", "backprop"):
    exp, metrics = run_method(method)
    results[method] = (exp, metrics)
    print(f"{method}: weight change {exp.weight_change()['linear1']:.2f}; cosine with the nearest class mean "
          f"{nearest_class_cosine(exp.initial_weights['linear1']):.2f} -> {nearest_class_cosine(exp.first_layer_weight()):.2f}; "
          f"network test accuracy {100 * metrics['test_accuracy']:.1f}%")

fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
for ax, method in zip(axes, ("ghl", "backprop")):
    plot_filters(results[method][0].first_layer_weight(), (1, 8, 8), 20, ax=ax, title=method)
plt.show()

# %% [markdown]
# ## Next
#
# * All rules side by side, each against its untrained control, over three seeds: `hebbian compare` (table,
#   TensorBoard logs with an HParams view, and a figure of every rule's filters in `runs/`).
# * One rule, one config: `hebbian train krotov_mnist_cpu` (the configs of the published experiments:
#   `hebbian list configs`).
# * In your own code: `HebbianTrainer(model, hebbian.create_rule("krotov"), hebbian.Local(model.parameters(), lr))`.
