"""
2. Oja finds the first principal component, Sanger the leading ones
====================================================================

Lesson 1 ended with four Oja units that all learned the same direction. Sanger's generalized Hebbian algorithm
(1989) lets unit :math:`i` learn only what units :math:`1 \\dots i` have not yet explained:

.. math:: \\Delta w_i = \\eta\\, u_i \\Big(x - \\sum_{k \\le i} u_k w_k\\Big).

Unit 1 sees plain Oja and finds the first principal component; unit 2 sees the input with that component
removed and finds the second, and so on: the units converge to the leading eigenvectors of the input covariance,
*in order*.

**What to look for**: the matrix of cosines between the learned units and the SVD's principal components. For Oja
it is one bright column (every unit is the first component); for Sanger it is bright on the diagonal (unit
:math:`i` is component :math:`i`). The filters of the Sanger units look like the SVD's "eigendigits", up to sign.
"""

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from hebbian import Local, create_rule
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import plot_filter_comparison

torch.manual_seed(0)
train = load_dataset("digits")
train = center(train, *pixel_stats(train))
pixels = train.tensors[0].flatten(1)
components = torch.linalg.svd(pixels, full_matrices=False).Vh[:8]  # the first 8 principal components (rows)
UNITS = 8


def learn(rule: str, epochs: int = 30):
    """8 units trained by ``rule`` from the same unit-norm start; returns their weights ``(8, 64)``."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, UNITS, bias=False), nn.Linear(UNITS, 10))
    with torch.no_grad():
        model[1].weight.copy_(nn.functional.normalize(torch.randn(UNITS, 64), dim=1))
    trainer = HebbianTrainer(model, {"1": create_rule(rule)}, Local(model[1].parameters(), lr=0.02))
    trainer.run(in_memory_loader(train, 128, generator=torch.Generator().manual_seed(0)), max_epochs=epochs)
    return model[1].weight.detach()


oja, sanger = learn("oja"), learn("sanger")

# %%
# Cosines with the principal components
# -------------------------------------
# Entry :math:`(i, j)` is :math:`|\cos(w_i, v_j)|`, unit :math:`i` against component :math:`j`.
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (name, w) in zip(axes, (("Oja", oja), ("Sanger", sanger))):
    cos = (nn.functional.normalize(w, dim=1) @ components.T).abs()
    image = ax.imshow(cos, vmin=0, vmax=1, cmap="viridis")
    ax.set(title=f"{name}: |cos(unit i, component j)|", xlabel="principal component j", ylabel="unit i")
fig.colorbar(image, ax=axes, shrink=0.8)

sanger_diag = (nn.functional.normalize(sanger, dim=1) * components).sum(1).abs()
oja_first = (nn.functional.normalize(oja, dim=1) @ components[0]).abs()
print("Sanger unit i vs component i, |cos|:", [round(float(c), 2) for c in sanger_diag])
print("Oja units vs the first component, |cos|:", [round(float(c), 2) for c in oja_first])

# %%
# The filters
# -----------
# ``plot_filter_comparison`` draws each set of weights as 8x8 images (every tile scaled on its own, so the sign
# shows as a swap of dark and light).
fig, axes = plot_filter_comparison({"Oja units": oja, "Sanger units": sanger, "SVD components": components},
                                   input_shape=(1, 8, 8), panel_size=3.2)

# %%
# Why
# ---
# Oja's units are independent: each runs the same dynamics, whose only stable fixed point is :math:`\pm v_1`. Sanger's
# sum over :math:`k \le i` deflates the input for unit :math:`i` by the components the units before it carry, the
# way the power method with deflation computes eigenvectors one after another. Components with close eigenvalues
# converge more slowly (look at the last units' cosines), which is also why lesson 1's cosines took a while to reach
# 1. Principal components are global features: every unit responds to every digit. Competition (lesson 3) makes
# units specialise instead.
