"""The two code listings of the pytorch-hebbian paper (Talloen et al., 2020), running on this package.

Only the import lines differ from the paper (plus the ``...`` placeholders filled in, and a subset of MNIST so that
the defaults finish in seconds on a CPU):

* Listing 1, Hebbian training: a model, MNIST, a ``DataLoader`` of batch 64, ``KrotovsRule()``, the ``Local``
  optimizer over ``model.named_parameters()``, ``HebbianTrainer(model, learning_rule, optimizer)`` and
  ``trainer.run(train_loader, epochs=...)``.
* Listing 2, evaluation: ``SupervisedEvaluator(model, criterion)`` attached to the trainer with
  ``evaluator.attach(trainer, Events.EPOCH_COMPLETED, val_loader)``.

The Hebbian rule leaves the readout alone, so listing 2 reports the accuracy of an untrained readout; the script
therefore also runs a linear probe (``HebbianEvaluator``: the Hebbian layer frozen, a fresh readout trained with
Adam) to show what the Hebbian features are worth.

Run::

    python examples/pytorch_hebbian_listing.py --data-root ../shared/datasets --limit 2000 --epochs 1

MNIST must already be on disk in torchvision's layout (``<data-root>/MNIST/raw``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Optional

import torch
from ignite.engine import Events
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import MNIST

from hebbian.data import default_data_root
from hebbian.models import create_model as create_network
from hebbian.optim import Local
from hebbian.rules import KrotovsRule
from hebbian.trainers import HebbianEvaluator, HebbianTrainer, SupervisedEvaluator


def create_model() -> torch.nn.Module:
    """pytorch-hebbian's example model: Flatten -> Linear(784, 2000, no bias) -> RePU -> Linear(2000, 10)."""
    return create_network("krotov_fc")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None, help="folder holding MNIST/raw (default: the package's data root)")
    parser.add_argument("--limit", type=int, default=2000, help="training images used (0: all 60,000)")
    parser.add_argument("--epochs", type=int, default=1, help="Hebbian epochs")
    parser.add_argument("--probe-epochs", type=int, default=10, help="linear-probe epochs (0: no probe)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.data_root is None:
        args.data_root = default_data_root()
    if args.data_root is None:
        parser.error("no data root found: pass --data-root pointing at a folder with MNIST/raw")
    return args


def subset(dataset, limit: int):
    return Subset(dataset, range(min(limit, len(dataset)))) if limit else dataset


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    root = str(args.data_root)

    # ---- Listing 1 (Hebbian training) ----
    model = create_model()
    dataset = MNIST(root=root, transform=transforms.ToTensor())
    dataset = subset(dataset, args.limit)  # not in the listing: a small default
    train_loader = DataLoader(dataset, batch_size=64)
    learning_rule = KrotovsRule()
    optimizer = Local(model.named_parameters(), lr=0.01)
    trainer = HebbianTrainer(model, learning_rule, optimizer)

    # ---- Listing 2 (evaluation) ----
    criterion = torch.nn.CrossEntropyLoss()
    val_loader = DataLoader(subset(MNIST(root=root, train=False, transform=transforms.ToTensor()), args.limit // 2),
                            batch_size=64)
    evaluator = SupervisedEvaluator(model, criterion)
    evaluator.attach(trainer, Events.EPOCH_COMPLETED, val_loader)

    trainer.run(train_loader, epochs=args.epochs)

    results = {f"listing2_{k}": float(v) for k, v in evaluator.metrics.items()}
    print(f"listing 2 (untrained readout): accuracy {results['listing2_accuracy']:.4f}, "
          f"loss {results['listing2_loss']:.4f}")
    if args.probe_epochs:
        probe = HebbianEvaluator(model, epochs=args.probe_epochs, lr=1e-2, batch_size=256)
        metrics = probe.run(train_loader, val_loader)
        results.update({f"probe_{k}": v for k, v in metrics.items()})
        print(f"linear probe of the Krotov features: train accuracy {metrics['train_accuracy']:.4f}, "
              f"test accuracy {metrics['test_accuracy']:.4f}")
    return results


if __name__ == "__main__":
    main()
