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
# Both normalise the batch update by its largest element. Here a hidden layer of 100 units (the
# `krotov_fc` network at width 0.05) learns for 5 epochs on the digits with the `hebbian` trainer, through the
# same `Experiment` the `hebbian` command uses; a linear probe (a fresh linear readout trained on the frozen
# features) measures how useful they are. Random, untrained weights are the baseline.

# %%
from hebbian.config import method_config
from hebbian.config import resolve_config
from hebbian.experiment import Experiment

QUICK = [("log.progress", False), ("train.epochs", 5), ("probe.epochs", 20)]


def run_method(method):
    """Train one method with its settings from the `compare_digits` config, as `hebbian compare` does."""
    exp = Experiment(method_config(resolve_config("compare_digits"), method, QUICK))
    exp.fit()
    return exp, exp.evaluate()


results = {}
for method in ("random", "krotov", "softhebb"):
    exp, metrics = run_method(method)
    results[method] = (exp, metrics)
    print(f"{method:9s} probe test accuracy {100 * metrics['probe_test_accuracy']:.1f}%  "
          f"({exp.epochs} epochs, {exp.seconds['train']:.1f} s)")

# all 100 units of each; Krotov's and SoftHebb's learned units are the prototypes, the others have not won yet
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
for ax, (method, (exp, _)) in zip(axes, results.items()):
    plot_filters(exp.first_layer_weight(), (1, 8, 8), 100, ax=ax, title=method)
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
# The Hebbian layers follow this rule and the classifier plain SGD, end to end. Compared with backprop on the same
# network and data:

# %%
for method in ("ghl", "backprop"):
    exp, metrics = run_method(method)
    results[method] = (exp, metrics)
    print(f"{method:9s} network test accuracy {100 * metrics['test_accuracy']:.1f}%  "
          f"probe {100 * metrics['probe_test_accuracy']:.1f}%  ({exp.epochs} epochs, {exp.seconds['train']:.1f} s)")

fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
for ax, method in zip(axes, ("ghl", "backprop")):
    plot_filters(results[method][0].first_layer_weight(), (1, 8, 8), 100, ax=ax, title=method)
plt.show()

# %% [markdown]
# ## Next
#
# * All rules side by side, with backprop and random weights: `hebbian compare` (table, TensorBoard logs and a
#   figure of every rule's filters in `runs/`).
# * One rule, one config: `hebbian train krotov_mnist_cpu` (the configs of the published experiments:
#   `hebbian list configs`).
# * In your own code: `HebbianTrainer(model, hebbian.create_rule("krotov"), hebbian.Local(model.parameters(), lr))`.
