"""Every packaged config loads, validates, builds its full-size model, and dry-runs on tiny random data."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from hebbian.config import method_config
from hebbian.config import CONFIG_DIR, list_configs, load_file, resolve_config
from hebbian.data import get_dataset_info
from hebbian.experiment import Data, check_config
from hebbian.runs import run

CONFIGS = list_configs()


def test_the_config_folder_is_not_empty():
    assert len(CONFIGS) >= 15 and all((CONFIG_DIR / f"{c}.yaml").is_file() for c in CONFIGS)


def fake_data(cfg) -> Data:
    """Random images of the config's dataset shape: two training batches and a few test images."""
    info = get_dataset_info(cfg["data"]["name"])
    g = torch.Generator().manual_seed(0)
    n = 2 * cfg["data"]["batch_size"]

    def split(count):
        return TensorDataset(torch.rand(count, *info.shape, generator=g),
                             torch.randint(info.num_classes, (count,), generator=g))

    return Data(split(n), split(8), info)


def methods_of(cfg) -> list:
    return cfg["compare"]["rules"] or [cfg["rule"]["name"]]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_and_builds_at_full_size(name):
    raw = load_file(name)
    assert raw.get("name") == name, "a config's name should be its file name"
    assert str(raw.get("description", "")).strip(), "every packaged config says what it reproduces"
    base = resolve_config(name)
    for method in methods_of(base):
        check_config(method_config(base, method, []))  # model options, rule hyperparameters, optimizer


@pytest.mark.parametrize("name", CONFIGS)
def test_config_dry_runs_one_epoch_on_tiny_random_data(name, tmp_path: Path):
    base = resolve_config(name)
    readout = [("probe.epochs", 1)] if base["probe"]["protocol"] != "logistic" else []
    small = readout + [("model.width", min(base["model"]["width"], 0.05)), ("train.epochs", 1),
             ("probe.early_stopping", None), ("probe.plateau_patience", None), ("log.progress", False),
             ("log.tensorboard", False), ("checkpoint.every", 1), ("data.batch_size", min(base["data"]["batch_size"], 16))]
    methods = methods_of(base)
    for method in methods[:3]:
        cfg = method_config(base, method, small)
        exp = run(cfg, tmp_path / method, data=fake_data(cfg))
        metrics = json.loads((tmp_path / method / "metrics.json").read_text())
        assert metrics["epochs"] == (0 if method == "random" else 1) and "diverged" not in metrics
        assert exp.trainer is None or exp.trainer.state.iteration == 2
        assert any(k.endswith("accuracy") for k in metrics)
        assert list((tmp_path / method / "checkpoints").glob("*.pt"))


# ---------------------------------------------------------------------- the published settings, spelled out
def test_krotov_mnist_is_the_published_setting():
    cfg = resolve_config("krotov_mnist")
    assert cfg["rule"] == {"name": "krotov", "params": {"p": 3.0, "k": 7, "delta": 0.4}, "layers": {}}
    assert (cfg["model"]["name"], cfg["model"]["width"], cfg["data"]["batch_size"]) == ("krotov_fc", 1.0, 100)
    assert (cfg["train"]["lr"], cfg["train"]["schedule"], cfg["train"]["init"]) == (0.04, "linear", "normal")


def test_fashion_conv_is_the_published_400_filter_net():
    cfg = resolve_config("krotov_fashion_conv")
    assert cfg["rule"]["params"] == {"p": 4.0, "k": 4, "delta": 0.4}
    assert (cfg["model"]["name"], cfg["model"]["width"], cfg["data"]["name"]) == ("hebbian_conv", 1.0,
                                                                               "fashion-mnist")
    assert cfg["probe"]["plateau_patience"] == 5 and cfg["probe"]["early_stopping"] == 15


def test_softhebb_and_ghl_deephebb_settings():
    sh = resolve_config("softhebb_cifar10")
    assert (sh["train"]["epochs"], sh["data"]["batch_size"], sh["probe"]["epochs"]) == (1, 10, 50)
    assert [sh["rule"]["layers"][f"conv{i}"]["lr"] for i in (1, 2, 3)] == [0.08, 0.005, 0.01]
    ghl = resolve_config("ghl_deephebb_cifar10")
    assert [ghl["rule"]["layers"][f"conv{i}"]["params"]["t_inv"] for i in (1, 2, 3)] == [1.0, 0.65, 0.25]
    assert (ghl["train"]["lr"], ghl["train"]["weight_decay"], ghl["train"]["head_lr"]) == (0.01, 0.05, 0.005)
    assert ghl["data"]["normalize"] == {"mean": 0.5, "std": 0.5} and ghl["train"]["schedule"] == "cosine"
    fh = resolve_config("ghl_fasthebb_cifar100")
    assert (fh["data"]["name"], fh["train"]["lr"], fh["train"]["weight_decay"], fh["train"]["head_lr"]) == (
        "cifar100", 0.05, 0.01, 1e-4)
