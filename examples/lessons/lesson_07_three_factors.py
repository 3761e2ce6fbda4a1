"""
7. Three factors: reward, random feedback, and GHL's global sign, next to backprop
==================================================================================

A purely local rule cannot know which of its changes help the task. *Three-factor* rules add a third factor
:math:`M` to the pre- and post-synaptic terms, a signal broadcast to every synapse of a layer:

.. math:: \\Delta W = \\eta\\, M \\odot H(\\text{pre}, \\text{post}).

* **Reward-modulated Hebb** (``reward_modulated``): :math:`M` is one number per sample, the reward (here
  :math:`\\log p(\\text{label})`) minus its running prediction. With ``post="noise"`` each unit adds Gaussian noise
  to its output and the rule correlates the noise with the reward surprise: node perturbation, whose average is the
  gradient, but with the variance of a single scalar reward per sample.
* **Random feedback** (``random_feedback``, direct feedback alignment): :math:`M` is the output error
  :math:`\\mathrm{softmax}(o) - \\mathrm{onehot}(t)` sent to each hidden unit through a *fixed random* matrix
  :math:`B`, so no layer needs another's weights.
* **GHL** (``ghl``): the size of a local soft-WTA Oja step, the sign of backprop's gradient,
  :math:`\\Delta W = -\\eta\\, |\\hat\\Delta| \\odot \\mathrm{sign}(\\partial L/\\partial W)`; the third
  factor is the sign.

All four methods below train the same 64-20-10 network from the same initial weights, with the settings of the
``compare_digits`` config's recipes. **What to look for**: the network's test accuracy over the epochs. All three
learn the task, far above chance (10%), without a backward pass through the layers (random feedback, the reward)
or with only the gradient's sign (GHL). The scalar reward learns the slowest, because one number per sample carries
little information about 1,490 weights (its recipe trains 30 epochs, not 10). Random feedback ends above this
backprop run and GHL below it: one seed, one setting each; lesson 9 shows how to compare methods so that such a
ranking means something.
"""

# %%
import matplotlib.pyplot as plt
import torch
from ignite.engine import Events
from torch import nn

from hebbian import Local, create_rule
from hebbian.data import center, in_memory_loader, load_dataset, pixel_stats
from hebbian.models import create_model
from hebbian.trainers import HebbianTrainer, SupervisedTrainer
from hebbian.trainers.ghl import GHLTrainer

train, test = load_dataset("digits"), load_dataset("digits", train=False)
mean, std = pixel_stats(train)
train, test = center(train, mean, std), center(test, mean, std)


def network():
    """The 64-20-10 network (``krotov_fc`` at width 0.01), hidden units drawn N(0, 1) and scaled to unit norm."""
    torch.manual_seed(0)
    model = create_model("krotov_fc", input_size=8, width=0.01)
    with torch.no_grad():
        model.linear1.weight.copy_(nn.functional.normalize(torch.randn(20, 64), dim=1))
    return model


def accuracy(model) -> float:
    with torch.no_grad():
        x, y = test.tensors
        return float((model(x).argmax(dim=1) == y).float().mean())


def cosine_schedule(trainer, optimizer, epochs: int) -> None:
    """Cosine decay of every learning rate over the run (the GHL and backprop recipes' ``schedule: cosine``)."""
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * 23)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: schedule.step())


def run(method: str):
    model = network()
    if method == "reward_modulated":  # the whole network, both layers, by the reward; 30 epochs
        epochs = 30
        rule = create_rule("reward_modulated", exploration=0.5, post="noise")
        trainer = HebbianTrainer(model, rule, Local(model.parameters(), lr=0.03), supervised_from=None)
    elif method == "random_feedback":  # both layers by the output error, the hidden one through fixed random B
        epochs = 10
        trainer = HebbianTrainer(model, create_rule("random_feedback"), Local(model.parameters(), lr=0.5),
                                 supervised_from=None)
    elif method == "ghl":  # the hidden layer by GHL, the readout by plain SGD (one backward pass for both)
        epochs = 10
        optimizer = torch.optim.SGD([{"params": [model.linear1.weight], "lr": 0.05},
                                     {"params": model.linear2.parameters(), "lr": 0.1}])
        trainer = GHLTrainer(model, {"linear1": create_rule("ghl")}, optimizer, loss_fn=nn.CrossEntropyLoss())
        cosine_schedule(trainer, optimizer, epochs)
    else:  # backprop: every weight by its gradient
        epochs = 10
        optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
        trainer = SupervisedTrainer(model, optimizer, nn.CrossEntropyLoss())
        cosine_schedule(trainer, optimizer, epochs)
    curve = [accuracy(model)]
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: curve.append(accuracy(model)))
    trainer.run(in_memory_loader(train, 64, generator=torch.Generator().manual_seed(0)), max_epochs=epochs)
    return curve


curves = {method: run(method) for method in ("reward_modulated", "random_feedback", "ghl", "backprop")}

# %%
# Test accuracy over training
# ---------------------------
fig, ax = plt.subplots(figsize=(8, 4))
for method, curve in curves.items():
    ax.plot(range(len(curve)), [100 * a for a in curve], marker="o", markersize=3, label=method)
ax.axhline(10, color="k", ls=":", lw=0.8, label="chance")
ax.set(xlabel="epoch", ylabel="network test accuracy (%)", title="the same network, four ways to train it")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
for method, curve in curves.items():
    print(f"{method}: network test accuracy {100 * curve[0]:.1f}% untrained -> {100 * curve[-1]:.1f}% after "
          f"{len(curve) - 1} epochs")

# %%
# Why
# ---
# Backprop gives every weight its own exact error signal. Random feedback gives every hidden unit its own error
# too, through the wrong matrix; it still learns because the forward weights come to *align* with :math:`B` (then
# the random feedback points downhill). GHL keeps backprop's direction per weight but only its sign; the Hebbian
# magnitude decides how much each weight moves. The reward-modulated rule has only one scalar per sample: its
# noise-times-reward estimate of the gradient is unbiased but noisy, so it needs many more updates. The rules'
# equations and sources: :doc:`/rules`; ``hebbian compare`` runs all of them on three seeds with their controls.
