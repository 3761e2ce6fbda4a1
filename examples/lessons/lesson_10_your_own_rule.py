"""
10. Writing your own rule and running it from the command line
==============================================================

A rule is a :class:`~hebbian.rules.LearningRule`: it declares its hyperparameters as keyword arguments of
``__init__``, returns batch **sums** from ``statistics`` (so data-parallel workers can add them before the update)
and turns them into :math:`\\Delta W` in ``finalize``. The :class:`~hebbian.rules.LayerView` ``view`` hides the
layer type: ``view.correlate(x, y)`` is :math:`\\sum_{n,p} y_k P` in the weight's shape (for a linear layer or a
convolution alike), ``view.neuron_sum(t)`` sums per unit, ``view.count(u)`` is the number of terms :math:`S`.
``register_rule`` puts it in the registry under a name, next to the built-in rules.

Here: a BCM-like rule, :math:`\\Delta w_k = \\frac1S \\sum y_k (y_k - \\theta_k) x` with the threshold
:math:`\\theta_k = \\text{scale} \\cdot \\overline{y_k^2}` of the batch (the built-in ``bcm`` of lesson 6 keeps a
running average instead), saved as a file ``my_bcm.py``, then run by ``hebbian compare --import my_bcm.py``.

**What to look for**: the rule appears in the registry and trains like any other; ``hebbian compare`` measures it
against its control and against Krotov's rule, and writes a figure of both rules' filters. Its batch-mean
threshold does not make units as selective as the built-in BCM: its probe stays near its control. That is the
point of the protocol: a new rule gets the same honest measurement as the old ones.
"""

# %%
# The rule, in a file
# -------------------
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.image

import hebbian.cli

RULE = '''
import torch
from hebbian.rules import LearningRule, register_rule
from hebbian.rules.base import check_positive


@register_rule("my_bcm", description="BCM-like: dw = y (y - theta) x with theta = scale * mean(y^2).")
class MyBCM(LearningRule):
    """dw_k = (1/S) sum_n y_k (y_k - theta_k) x, theta_k = scale * (1/S) sum_n y_k^2; y = u (the drive)."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = check_positive("scale", scale)

    def statistics(self, view, x, u, labels=None):
        # batch sums only, so that data-parallel workers can add them up before finalize
        return {"y2x": view.correlate(x, u * u), "yx": view.correlate(x, u),
                "y2": view.neuron_sum(u * u), "count": view.count(u)}

    def finalize(self, view, stats, grad=None):
        theta = view.per_neuron(self.scale * stats["y2"] / stats["count"])
        return (stats["y2x"] - theta * stats["yx"]) / stats["count"]
'''
work = Path(tempfile.mkdtemp())
(work / "my_bcm.py").write_text(RULE)

# %%
# In Python, importing the file registers the rule (``hebbian.plugins.import_plugins`` imports it once and checks
# the rule's contract: its update's shape, dtype and finiteness on a small batch, as ``--import`` does);
# ``create_rule`` builds it and ``update`` gives one step's :math:`\Delta W` for a layer and a batch (here a
# convolution: the same code serves both layer types).
import torch  # noqa: E402

from hebbian import create_rule, list_rules  # noqa: E402
from hebbian.plugins import import_plugins  # noqa: E402

import_plugins([str(work / "my_bcm.py")])
rule = create_rule("my_bcm", scale=0.5)
layer = torch.nn.Conv2d(1, 8, 3, bias=False)
x = torch.randn(4, 1, 8, 8)
delta = rule.update(layer, x, layer(x).detach())
print(rule, "| registered:", "my_bcm" in list_rules(), "| update shape", tuple(delta.shape))

# %%
# From the command line
# ---------------------
# ``--import`` takes the file (or a module name) and is recorded in every run's ``config.yaml``, so the runs can be
# repeated or resumed. A method without a recipe runs with the config's settings (Krotov's learning rate 0.2 and
# N(0, 1) weights, under which this rule diverges); ``--set recipes.my_bcm...`` gives it its own. In a shell::
#
#     hebbian compare --import my_bcm.py --rules my_bcm,krotov --seeds 1 \
#         --set recipes.my_bcm.train.lr=0.01 --set recipes.my_bcm.train.init=unit \
#         --set recipes.my_bcm.train.schedule=constant
#
# and the same from Python, through ``hebbian.cli.main``:
out = work / "compare"
hebbian.cli.main(["compare", "--import", str(work / "my_bcm.py"), "--rules", "my_bcm,krotov", "--seeds", "1",
                  "--set", "recipes.my_bcm.train.lr=0.01", "--set", "recipes.my_bcm.train.init=unit",
                  "--set", "recipes.my_bcm.train.schedule=constant", "--out", str(out), "--no-progress",
                  "--no-tensorboard"])

# %%
# The comparison's figure
# -----------------------
# ``hebbian compare`` writes ``comparison.png``: the accuracies with their controls, and the filters of every
# method side by side.
image = matplotlib.image.imread(out / "comparison.png")
fig, ax = plt.subplots(figsize=(12, 12 * image.shape[0] / image.shape[1]))
ax.imshow(image)
ax.set_axis_off()
fig.tight_layout()

# %%
# One run's filters, drawn by ``hebbian visualize`` from its checkpoint:
hebbian.cli.main(["visualize", str(out / "my_bcm" / "seed0"), "-o", str(work / "my_bcm_filters.png")])
image = matplotlib.image.imread(work / "my_bcm_filters.png")
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(image)
ax.set_axis_off()

# %%
# Next
# ----
# To share the rule, put it in a package with an entry point in the group ``hebbian.rules``; ``pip install`` then
# makes it appear in ``hebbian list rules`` everywhere (:doc:`/rules`, "Your rule from the command line"). Test it
# the way the package tests its own rules: its update against an independent float64 reference on a few batches.
