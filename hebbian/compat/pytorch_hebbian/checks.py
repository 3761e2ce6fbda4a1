"""What the compat trainers and evaluators are given, checked before any training: one-line errors instead of torch's.

* ``epochs``: a positive integer (pytorch-hebbian passed ``-1`` and ``1.5`` on to Ignite, which trained 0 and 2
  epochs without a word).
* labels, where they are used (supervised trainers, evaluators, Hebbian rules that need labels): integer class
  indices of shape ``(N,)`` in ``[0, C)``, ``C`` the outputs of the model's last ``nn.Linear`` (float labels,
  ``(N, 1)`` labels and labels out of range were torch's ``RuntimeError``/``IndexError`` in the loss, after the
  Hebbian epochs had run). All labels of a loader over a ``TensorDataset``, a dataset with ``targets``
  (torchvision) or a ``Subset`` of one are checked when a run starts and when an evaluator is attached with its
  data (so before the trainer it is attached to trains); every batch's labels as it is fetched. The unsupervised
  Hebbian trainer ignores labels, as pytorch-hebbian did.
* images: the first batch of every run is put through the model (no gradient, eval mode, nothing learned) before
  training, so that images of the wrong shape or dtype are a ``ValueError``/``TypeError`` naming the batch's shape
  and dtype and the model's, not torch's message from inside the first step.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from ignite.engine import Engine, Events
from torch import Tensor, nn
from torch.utils.data import Subset, TensorDataset

from hebbian.trainers.batch import dtype_mismatch, prepare_batch
from hebbian.trainers.evaluators import parameter_dtype

Device = Optional[Union[str, torch.device]]


def check_epochs(epochs: Any) -> int:
    """``epochs`` as given, if it is a positive integer.

    Raises:
        TypeError: not an integer (``1.5``, ``"2"``, ``True``). ValueError: an integer below 1.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int):
        raise TypeError(f"epochs must be a positive integer (the number of passes over the data), got {epochs!r} "
                        f"({type(epochs).__name__})")
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer (the number of passes over the data), got {epochs}")
    return epochs


def model_classes(model: nn.Module) -> Optional[int]:
    """The outputs of the model's last ``nn.Linear`` (its classes), or ``None`` when it has none."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else None


def check_labels(y: Any, n: Optional[int], classes: Optional[int], where: str) -> None:
    """``y`` holds integer class indices of shape ``(n,)`` in ``[0, classes)`` (the range only where ``y`` is on the
    CPU, so no device is synchronised).

    Raises:
        TypeError: not an integer tensor. ValueError: another shape, or a label outside the classes.
    """
    if not isinstance(y, Tensor):
        raise TypeError(f"{where}: labels must be a tensor of class indices, got {type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"{where}: labels must be integer class indices (torch.long), got {y.dtype}; convert them "
                        "(y.long()) or give the dataset integer targets")
    if y.dim() != 1 or (n is not None and y.shape[0] != n):
        expected = f"({n},)" if n is not None else "(N,)"
        raise ValueError(f"{where}: labels must have shape {expected}, one class index per image, got "
                         f"{tuple(y.shape)}")
    if classes is not None and y.numel() and y.device.type == "cpu":
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= classes:
            raise ValueError(f"{where}: labels must be class indices in [0, {classes - 1}] (the model's last Linear "
                             f"layer has {classes} outputs), got labels from {low} to {high}")


def dataset_labels(dataset: Any) -> Optional[Tensor]:
    """All labels of a ``TensorDataset`` (its second tensor), of a dataset with ``targets`` and no
    ``target_transform`` (torchvision's), or of a ``Subset`` of one; ``None`` when they cannot be read up front."""
    if isinstance(dataset, Subset):
        labels = dataset_labels(dataset.dataset)
        return None if labels is None else labels[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1] if len(dataset.tensors) > 1 else None
    targets = getattr(dataset, "targets", None)
    if targets is None or getattr(dataset, "target_transform", None) is not None:
        return None
    try:
        return targets if isinstance(targets, Tensor) else torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError):
        return None


def check_forward(model: nn.Module, x: Tensor, device: Device, where: str) -> None:
    """Run ``model`` on ``x`` (no gradient, eval mode; the mode is restored) and turn a failure into one line.

    Raises:
        TypeError: images of another dtype than the model's parameters (naming both and the fix). ValueError: the
            model cannot take images of this shape.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x if device is None else x.to(device))
    except RuntimeError as err:
        if isinstance(err, torch.OutOfMemoryError):
            raise
        explained = dtype_mismatch(x, parameter_dtype(model), err, where)
        if explained is not None:
            raise explained from None
        reason = " ".join(str(err).split())
        raise ValueError(f"{where}: the model cannot take images of shape {tuple(x.shape)} (batch, ...) ({reason}); "
                         "give images of the shape the model was built for") from None
    finally:
        model.train(was_training)


def check_loader_labels(loader: Any, model: nn.Module, where: str) -> None:
    """The labels of ``loader``'s dataset, where they can be read up front (:func:`dataset_labels`), are class
    indices of ``model``'s classes; nothing to check otherwise."""
    labels = dataset_labels(getattr(loader, "dataset", None))
    if labels is not None:
        check_labels(labels, None, model_classes(model), f"{where} (its dataset)")


def attach_data_checks(engine: Engine, model: nn.Module, device: Device, where: str = "data",
                       labels: bool = True) -> None:
    """Check ``engine``'s data (see the module docstring): the labels (when ``labels``) of its dataset when a run
    starts and of every batch as it is fetched, and the first batch of every run through the model, before the
    engine's step runs."""
    classes = model_classes(model)
    first = {"pending": False}

    def on_started(e: Engine) -> None:
        first["pending"] = True
        if labels:
            check_loader_labels(e.state.dataloader, model, where)

    def on_batch(e: Engine) -> None:
        try:
            x, y = prepare_batch(e.state.batch)
        except TypeError:  # not (x, y), a dict or a tensor: the engine's step reports it
            return
        if labels and y is not None:
            check_labels(y, x.shape[0], classes, where)
        if first["pending"]:
            first["pending"] = False
            check_forward(model, x, device, where)

    engine.add_event_handler(Events.STARTED, on_started)
    engine.add_event_handler(Events.GET_BATCH_COMPLETED, on_batch)
