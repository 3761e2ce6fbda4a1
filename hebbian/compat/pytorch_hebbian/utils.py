"""pytorch-hebbian's ``utils``: weights loading, device choice, dataset split, patches and figure conversion."""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, random_split

from hebbian.compat.pytorch_hebbian.compat_warnings import logger_name
from hebbian.trainers.batch import prepare_batch

__all__ = [
    "plot_to_img", "extract_image_patches", "split_dataset", "prepare_batch", "load_weights",
    "extract_layers_from_state_dict", "get_device",
]

logger = logging.getLogger(logger_name(__name__))

LayerName = Union[str, Tuple[str, str]]


def plot_to_img(fig: Any) -> np.ndarray:
    """A matplotlib figure as a ``(3, H, W)`` float array in [0, 1] (for ``SummaryWriter.add_image``); closes it."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return np.transpose(rgba[..., :3] / 255.0, (2, 0, 1))


def extract_image_patches(x: Tensor, kernel_size: Sequence[int], stride: Any = (1, 1), dilation: Any = 1,
                          padding: Any = 0) -> Tensor:
    """The ``kh x kw`` patches of ``x (N, C, H, W)``: ``(N*OH*OW*C, kh, kw)``, in (sample, position, channel) order.

    pytorch-hebbian returned the same shape, but its rows were not image patches (a reshape of the unfolded tensor
    in the wrong memory order) and it ignored ``dilation`` and ``padding``; these are the true patches.
    """
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x.shape) if isinstance(x, Tensor) else x!r}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # (N, C*kh*kw, L)
    n, c = x.shape[:2]
    return cols.reshape(n, c, kh, kw, -1).permute(0, 4, 1, 2, 3).reshape(-1, kh, kw)


def split_dataset(dataset: Dataset, val_split: float) -> Tuple[Dataset, Dataset]:
    """Random ``(train, validation)`` split with ``int(val_split * len(dataset))`` validation samples."""
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)) or not 0 <= val_split <= 1:
        raise ValueError(f"val_split must be a fraction in [0, 1], got {val_split!r}")
    val_size = int(val_split * len(dataset))  # type: ignore[arg-type]
    train, val = random_split(dataset, [len(dataset) - val_size, val_size])  # type: ignore[arg-type]
    return train, val


def extract_layers_from_state_dict(state_dict: Dict[str, Tensor], layer_names: Sequence[LayerName]
                                   ) -> Dict[str, Tensor]:
    """The ``<layer>.weight`` entries of the named layers; a ``(source, destination)`` pair renames one."""
    out: Dict[str, Tensor] = {}
    for layer_name in layer_names:
        source, destination = layer_name if isinstance(layer_name, tuple) else (layer_name, layer_name)
        key = f"{source}.weight"
        if key not in state_dict:
            raise KeyError(f"layer_names: the state dict has no {key!r}; it has {sorted(state_dict)}")
        out[f"{destination}.weight"] = state_dict[key]
    return out


def load_weights(model: nn.Module, state_dict_path: str, layer_names: Optional[List[LayerName]] = None,
                 freeze: bool = False) -> nn.Module:
    """Load a saved state dict into ``model`` (all of it, or only the named layers' weights), optionally frozen.

    Args:
        model: the model acquiring the weights.
        state_dict_path: a file written by ``torch.save(model.state_dict())`` or Ignite's ``ModelCheckpoint`` with
            one object; loaded with ``weights_only=True`` onto the model's device.
        layer_names: only these layers' ``weight`` (a ``(source, destination)`` pair maps names); ``None``: the whole
            state dict, strictly.
        freeze: set ``requires_grad=False`` on the loaded layers (all of the model when ``layer_names`` is None).

    Returns:
        ``model``.
    """
    device = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    state_dict = torch.load(state_dict_path, map_location=device, weights_only=True)
    if layer_names is not None:
        state_dict = extract_layers_from_state_dict(state_dict, layer_names)
    model.load_state_dict(state_dict, strict=layer_names is None)
    logger.info("Loaded initial model weights for layer(s) %s from '%s'.", layer_names, state_dict_path)
    if freeze:
        children = dict(model.named_children())
        names = [n[1] if isinstance(n, tuple) else n for n in layer_names] if layer_names is not None else None
        modules = [model] if names is None else [children[n] if n in children else model.get_submodule(n)
                                                 for n in names]
        for module in modules:
            for param in module.parameters():
                param.requires_grad = False
        logger.info("Froze layer(s) %s.", names if names is not None else "all")
    return model


def get_device(device: Optional[Union[str, torch.device]] = None) -> str:
    """``"cuda"`` (or the ``"cuda:N"`` asked for) when asked for or nothing was asked, and available; else ``"cpu"``.

    pytorch-hebbian also switched torch's default tensor type to CUDA; this does not change any global state.
    """
    name = "cuda" if device is None else str(device)
    if not (name == "cpu" or name == "cuda" or re.fullmatch(r"cuda:\d+", name)):
        raise ValueError(f"device must be 'cuda', 'cuda:N', 'cpu' or None, got {device!r}")
    chosen = name if name.startswith("cuda") and torch.cuda.is_available() else "cpu"
    if chosen != "cpu":
        logger.info("CUDA device set to '%s'.", torch.cuda.get_device_name(torch.device(chosen)))
    return chosen
