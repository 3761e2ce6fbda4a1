"""
9. Comparing rules honestly: scale-free readouts, controls, seeds
=================================================================

"Rule A reaches 92%, rule B 88%" says little unless three things hold.

1. **The readout must be scale-free and converged.** Hebbian rules end with very different weight norms (Oja's
   units have norm 1, SoftHebb's start at 25, Hebb's grow without bound). A readout trained for a few epochs of SGD
   on the raw features is faster on some scales than on others, so it ranks the *scale* of the features, not what
   they encode. The package's ``logistic`` probe standardises every feature and fits a logistic regression to
   convergence, choosing its L2 strength on a validation split: multiplying the features by a constant changes
   nothing.
2. **Every method needs a control**: the same network with the same initial weights, *untrained*, read out by the
   same probe. Random features are often good (lesson 5's controls), and the question is what learning added.
3. **Seeds**: the initial draw, the data order and the test split change the numbers by a few points on a small
   problem; report the spread, and a gain only where it holds across seeds.

This is the protocol of ``hebbian compare``.

**What to look for**: first, one untrained network at three weight scales, read out both ways: the naive readout's
accuracy depends on the scale alone, the probe's does not. Then ``hebbian compare`` on two methods and three
seeds: each method's gain over its own control, seed by seed.
"""

# %%
# The same features at two scales
# -------------------------------
# ``krotov_fc``'s hidden units are ReLUs (a positively homogeneous function), so multiplying the weights by 25
# multiplies the features by 25: exactly the same information.
import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

import hebbian.cli
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.models import create_model
from hebbian.probes import create_probe
from hebbian.trainers import SupervisedTrainer

train, test = load_dataset("digits"), load_dataset("digits", train=False)
mean, std = pixel_stats(train)
train, test = center(train, mean, std), center(test, mean, std)
loaders = (in_memory_loader(train, 512, shuffle=False), in_memory_loader(test, 512, shuffle=False))


def untrained(scale: float):
    torch.manual_seed(0)
    model = create_model("krotov_fc", input_size=8, width=0.01)
    with torch.no_grad():
        model.linear1.weight.copy_(scale * nn.functional.normalize(torch.randn(20, 64), dim=1))
    return model


def naive_readout(model) -> float:
    """The network's own readout trained by 3 epochs of SGD (lr 0.1) on the raw hidden features."""
    torch.manual_seed(1)
    optimizer = torch.optim.SGD(model.linear2.parameters(), lr=0.1)
    SupervisedTrainer(model, optimizer, nn.CrossEntropyLoss()).run(
        in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=3)
    with torch.no_grad():
        x, y = test.tensors
        return float((model(x).argmax(1) == y).float().mean())


scales = (0.1, 1.0, 25.0)
naive = [naive_readout(untrained(s)) for s in scales]
probe = [create_probe("logistic", untrained(s)).run(*loaders)["test_accuracy"] for s in scales]

fig, ax = plt.subplots(figsize=(7, 3.6))
positions = torch.arange(len(scales))
ax.bar(positions - 0.2, [100 * a for a in naive], 0.4, label="naive: 3 epochs of SGD on raw features")
ax.bar(positions + 0.2, [100 * a for a in probe], 0.4, label="logistic probe: standardised, converged")
ax.set(xticks=positions, xticklabels=[f"weights × {s}" for s in scales], ylabel="test accuracy (%)",
       title="one untrained network, three weight scales")
ax.legend(loc="lower right", fontsize="small")
fig.tight_layout()
for s, n, p in zip(scales, naive, probe):
    print(f"weights x {s}: naive readout {100 * n:.1f}%, logistic probe {100 * p:.1f}%")

# %%
# Controls and seeds: ``hebbian compare``
# ---------------------------------------
# Two methods on three seeds, each against its control; ``hebbian.cli.main`` runs the command from Python (in a
# shell: ``hebbian compare --rules oja,krotov --seeds 3``; add ``random`` for the untrained network as a row of its
# own: it equals the control). It writes one row per method and seed.
out = Path(tempfile.mkdtemp()) / "compare"
hebbian.cli.main(["compare", "--rules", "oja,krotov", "--seeds", "3", "--out", str(out), "--no-progress",
                  "--no-tensorboard"])
with (out / "results.csv").open() as f:
    rows = list(csv.DictReader(f))

# %%
# Each method's probe accuracy against its own control, seed by seed (a line joins a seed's control and trained
# result).
fig, ax = plt.subplots(figsize=(7, 4))
for i, method in enumerate(("oja", "krotov")):
    for row in (r for r in rows if r["rule"] == method):
        control, trained = float(row["control_probe_test_accuracy"]), float(row["probe_test_accuracy"])
        ax.plot([i - 0.15, i + 0.15], [100 * control, 100 * trained], "o-", color=f"C{int(row['seed'])}",
                label=f"seed {row['seed']}" if i == 0 else None)
        print(f"{method} seed {row['seed']}: probe {100 * trained:.1f}% vs control {100 * control:.1f}% "
              f"(gain {100 * (trained - control):+.1f} points)")
ax.set(xticks=[0, 1], xticklabels=["oja\n(control → trained)", "krotov\n(control → trained)"],
       ylabel="probe test accuracy (%)", title="gain over the control, per seed")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# Why
# ---
# SGD's step on the readout scales with the features: at a small scale 3 epochs have barely moved the readout,
# at larger ones it has gone further; either way the number measures the optimiser, not the features.
# Standardising removes the scale and fitting to convergence removes the optimiser. The control then tells what
# training added: here Krotov's units gain on every seed, and Oja's rule *loses* against its own random start,
# because all its units learn the same first principal component (lesson 2), leaving the probe one feature. A table
# without controls would have shown Oja's accuracy and hidden that it is below random features.
