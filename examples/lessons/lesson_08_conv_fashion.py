"""
8. Convolutional filters on Fashion-MNIST
=========================================

A convolution applies the same small filter at every position of the image, so a Hebbian rule on a conv layer
learns from every 5x5 patch of every image: :math:`\\Delta W` sums over samples *and* positions (the patch
:math:`P` replaces the input :math:`x`). The network is pytorch-hebbian's ``hebbian_conv``: a 5x5 convolution,
batch norm, ReLU, 2x2 max-pooling and a linear readout; here 40 filters (``width=0.1``) trained by Krotov's rule on
5,000 Fashion-MNIST images for 2 epochs.

Fashion-MNIST is read from ``$HEBBIAN_DATA_ROOT``, ``../shared/datasets`` beside the clone, or ``./data``, in
torchvision's layout (``FashionMNIST/raw/*-ubyte``); where it is absent this lesson says so and skips (nothing is
downloaded).

**What to look for**: random 5x5 noise becoming oriented edges, bars and blobs within the first hundred
batches, the local building blocks of clothes' outlines and textures, unlike the whole-digit prototypes of the
fully connected layers in lessons 3-5: a 5x5 window sees only a part of an object.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from ignite.engine import Events

from hebbian import Local, create_rule
from hebbian.data import center, default_data_root, in_memory_loader, load_dataset, pixel_stats
from hebbian.models import create_model
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import FilterSnapshots, plot_filters, plot_filters_over_training


def fashion_root():
    """The folder holding ``FashionMNIST/``: the package's default root, else ``shared/datasets`` beside a folder
    above this one (the clone's neighbour, wherever the lesson runs from), else ``None``."""
    candidates = [default_data_root()] + [p / "shared" / "datasets" for p in [Path.cwd(), *Path.cwd().parents]]
    return next((c for c in candidates if c is not None and (c / "FashionMNIST").is_dir()), None)


root = fashion_root()
if root is None:
    print("Skipped: Fashion-MNIST is not here (looked in $HEBBIAN_DATA_ROOT, ../shared/datasets and ./data); "
          "put torchvision's FashionMNIST/raw files there, or run `hebbian train krotov_fashion_conv_cpu --download`.")
    train = None
else:
    train = load_dataset("fashion-mnist", root=root, limit=5000)
    train = center(train, *pixel_stats(train))
    print(f"Fashion-MNIST from {root}: {len(train)} training images {tuple(train.tensors[0].shape[1:])}")

# %%
# Training, with the filters kept at chosen batches
# -------------------------------------------------
if train is not None:
    torch.manual_seed(0)
    model = create_model("hebbian_conv", input_size=28, width=0.1)  # conv1: 40 filters 1x5x5
    torch.nn.init.normal_(model.conv1.weight)
    trainer = HebbianTrainer(model, create_rule("krotov", p=4, k=4, delta=0.4), Local(model.parameters(), lr=0.04))
    snapshots = FilterSnapshots(model.conv1, steps=[0, 10, 20, 40, 80]).attach(trainer, Events.ITERATION_COMPLETED)
    trainer.run(in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=2)
    snapshots.keep(trainer.state.iteration)

# %%
# The filters over training
# -------------------------
# Batches 0 (random), 10, 20, 40, 80 and the last one (the end of the second epoch; 79 batches an epoch).
if train is not None:
    fig, axes = plot_filters_over_training(snapshots.weights, label="batch", max_filters=40, ncols=3, panel_size=3.2,
                                           title="hebbian_conv, conv1, Krotov's rule")

# %%
# The final filters, larger, next to a few of the images they learned from.
if train is not None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    plot_filters(model.conv1.weight.detach(), max_filters=40, ax=axes[0], title="40 learned 5x5 filters")
    plot_filters(train.tensors[0][:16], max_filters=16, ax=axes[1], title="training images (centred)")
    fig.tight_layout()

# %%
# Why
# ---
# Each filter competes for every patch; the winner moves towards the patch. Patches of clothes are mostly uniform
# regions and edges at various orientations, so the prototypes of patches are edge and blob detectors, much like
# the first layer of a network trained by backprop (or the receptive fields in V1). How good these features are for
# classification is measured by ``hebbian train krotov_fashion_conv_cpu`` (a linear probe on the pooled features
# against its untrained control; about 10 minutes) and, for the full experiment, in :doc:`/results`.
