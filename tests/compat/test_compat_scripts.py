"""pytorch-hebbian's four example scripts and its README listing, run with only their imports changed.

The scripts live in examples/pytorch_hebbian (``hebbian.py`` renamed ``hebbian_example.py``: as a script, a file named
``hebbian.py`` shadows the package). :func:`test_scripts_differ_from_upstream_only_in_imports` proves the "only the
imports" part: undoing the import changes gives back the upstream files byte for byte (SHA-256 at 595ec79).

Each script runs on the tiny data root of compat_helpers.py (shrunk through ``config.DATASETS_DIR``) and through its
own parameters:

* ``hebbian_simple.py`` and the README listing have none: 10 epochs of 512 MNIST images (one batch each);
* ``hebbian.py`` gets a params JSON (``--json``) with ``val_split`` 0.998 (20 images of its hard-coded 10,000-image
  subset train, in batches of 10) and 2 epochs. Its evaluator, attached every 100 epochs, does not fire: reaching it
  takes 100 epochs and then at least 16 supervised epochs over all 10,000 images (minutes on a CPU), so CI tests
  ``HebbianEvaluator`` in test_compat_names.py instead, with an ``init_function`` built as the script builds it;
* ``supervised.py``'s ``main(params, ...)`` gets ``train_subset`` 40 (20 train, 20 validate) and 2 epochs, and the
  conv filters that the ``hebbian.py`` run saved, under the file name it hard-codes;
* ``test.py`` runs as it is, on 256 test images.

Spies on the compat trainers' ``run`` record the model's weights before and after training.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
from typing import Dict, List

import numpy as np
import pytest
import torch

from hebbian.compat.pytorch_hebbian import trainers as compat_trainers
from hebbian.compat.pytorch_hebbian import compat_warnings
from hebbian.compat.pytorch_hebbian.compat_warnings import PytorchHebbianCompatWarning
from compat_helpers import EXAMPLES, Sandbox, read_idx

pytestmark = pytest.mark.usefixtures("single_thread")

#: SHA-256 of the upstream files (julestalloen/pytorch-hebbian at 595ec79), and of the README's listing.
UPSTREAM = {
    "hebbian_simple.py": ("examples/hebbian_simple.py",
                          "656452e1ea17640fcbc36ff9e387614837e5542972ea34a586b90ea76158534e"),
    "hebbian_example.py": ("examples/hebbian.py", "b8673031f099de539ffd5560a1be5e1baa534b11fd64578df1da4faf75b2d566"),
    "supervised.py": ("examples/supervised.py", "825b45669a43c201b2fec8892c2bc48aeb44f009468bf8ca475a1700b49ad069"),
    "test.py": ("examples/test.py", "c24d49891c360bad40171ac5faecce60760f5ede84a1ba5b523541164a646488"),
    "data.py": ("examples/data.py", "6d12c84cca04eaca6311fe22c471d5cc14060f991894d4077f6f3ce6c5455644"),
    "models.py": ("examples/models.py", "5e091068da91bedf9d2d009b5c337c43e69459b78232507776500d3d93e8eeb7"),
}
README_LISTING_SHA256 = "953ab92b889a4923156f7a3c02a79ebb4875f4dc25224f76bf6f4b311b8f8a9e"

#: the ignite import lines that changed (ignite.contrib is deprecated), new -> upstream
IGNITE_IMPORTS = {
    "from ignite.handlers import LRScheduler, ProgressBar":
        "from ignite.contrib.handlers import LRScheduler, ProgressBar",
    "from ignite.handlers import global_step_from_engine, ProgressBar":
        "from ignite.contrib.handlers import global_step_from_engine, ProgressBar",
    "from ignite.handlers.tensorboard_logger import TensorboardLogger, OptimizerParamsHandler":
        "from ignite.contrib.handlers.tensorboard_logger import TensorboardLogger, OptimizerParamsHandler",
}


def strip_header(text: str) -> str:
    """The file without its attribution header (the leading comment lines and the blank line after them)."""
    lines = text.split("\n")
    i = 0
    while lines[i].startswith("#"):
        i += 1
    assert lines[i] == "", "the attribution header must end with a blank line"
    return "\n".join(lines[i + 1:])


def undo_imports(text: str) -> str:
    """Undo the import changes, on import lines only."""
    out = []
    for line in text.split("\n"):
        if line.startswith(("from ", "import ")):
            line = IGNITE_IMPORTS.get(line, line).replace("hebbian.compat.pytorch_hebbian", "pytorch_hebbian")
        out.append(line)
    return "\n".join(out)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_scripts_differ_from_upstream_only_in_imports(name):
    text = (EXAMPLES / name).read_text()
    imports = [line for line in text.split("\n") if line.startswith(("from ", "import "))]
    assert not [line for line in imports if re.match(r"(from|import) (pytorch_hebbian|ignite\.contrib)", line)]
    assert sha256(undo_imports(strip_header(text))) == UPSTREAM[name][1], f"{name} differs from {UPSTREAM[name][0]}"


def test_readme_listing_is_verbatim():
    text = (EXAMPLES / "readme_listing.py").read_text()
    listing = text[text.index("# Creating the model"):]
    assert sha256(listing) == README_LISTING_SHA256


# ---------------------------------------------------------------------------------------------- spies
class Spy:
    """Records the compat trainers' weights at the start and end of each ``run``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: List[Dict[str, object]] = []
        for cls in (compat_trainers.HebbianTrainer, compat_trainers.SupervisedTrainer):
            monkeypatch.setattr(cls, "run", self._wrap(cls.run))

    def _wrap(self, run):
        def spied(trainer, *args, **kwargs):
            before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            result = run(trainer, *args, **kwargs)
            self.runs.append({"trainer": trainer, "before": before,
                              "after": {k: v.clone() for k, v in trainer.model.state_dict().items()}})
            return result

        return spied

    def of(self, cls) -> List[Dict[str, object]]:
        return [r for r in self.runs if type(r["trainer"]) is cls]


def changed(run: Dict[str, object], key: str) -> bool:
    return not torch.equal(run["before"][key], run["after"][key])


# ---------------------------------------------------------------------------------------------- the scripts
@pytest.mark.data
@pytest.mark.parametrize("script", ["hebbian_simple.py", "readme_listing.py"])
def test_fc_scripts_train_the_hebbian_layer(sandbox, monkeypatch, script):
    spy = Spy(monkeypatch)
    sandbox.run(script)
    (run,) = spy.of(compat_trainers.HebbianTrainer)
    trainer = run["trainer"]
    assert [lyr.name for lyr in trainer.layers] == ["linear1"]
    assert trainer.engine.state.epoch == 10 and trainer.engine.state.iteration == 10
    w0 = run["before"]["linear1.weight"]
    assert abs(float(w0.mean())) < 0.01 and abs(float(w0.std()) - 1) < 0.01  # KrotovsRule's N(0, 1) init
    assert changed(run, "linear1.weight")
    assert not changed(run, "linear2.weight") and not changed(run, "linear2.bias")  # the readout is not Hebbian


@pytest.fixture(scope="module")
def hebbian_run(tmp_path_factory, tiny_data_root):
    """examples/hebbian.py (as hebbian_example.py) with a small params JSON; shared by the tests below."""
    with pytest.MonkeyPatch.context() as mp:
        box = Sandbox(mp, tmp_path_factory.mktemp("hebbian"), tiny_data_root)
        params = {"train_batch_size": 10, "val_batch_size": 256, "val_split": 0.998, "epochs": 2,
                  "delta": 0.4, "k": 4, "norm": 4, "lr": 0.04}
        (box.tmp / "params.json").write_text(json.dumps({"params": params}))
        spy = Spy(mp)
        compat_warnings.reset_warnings()
        with pytest.warns(PytorchHebbianCompatWarning, match="conv layers learn from true image patches"):
            box.run("hebbian_example.py", "--json", str(box.tmp / "params.json"))
        yield box, spy
    Sandbox.forget_modules()


@pytest.mark.data
def test_hebbian_script_trains_the_conv_layer(hebbian_run):
    box, spy = hebbian_run
    (run,) = spy.of(compat_trainers.HebbianTrainer)
    trainer = run["trainer"]
    assert [lyr.name for lyr in trainer.layers] == ["conv1"]
    assert trainer.engine.state.epoch == 2 and trainer.engine.state.iteration == 4  # 20 images, batches of 10
    assert changed(run, "conv1.weight")
    assert not changed(run, "linear1.weight")
    assert 0 <= trainer.engine.state.metrics["unit_conv"] <= 1
    # outputs where config says: a checkpoint per epoch (n_saved=1) and a TensorBoard run
    checkpoints = list((box.tmp / "output" / "models").glob("mnist-fashion-heb-*_m_2.pt"))
    assert len(checkpoints) == 1
    saved = torch.load(checkpoints[0], weights_only=True)
    assert torch.equal(saved["conv1.weight"], run["after"]["conv1.weight"])
    (events,) = (box.tmp / "output" / "tensorboard" / "runs" / "mnist-fashion" / "heb").glob("*/events.out.*")
    assert events.stat().st_size > 0


@pytest.mark.data
def test_supervised_script_transfers_frozen_hebbian_filters(hebbian_run, sandbox, monkeypatch, capsys):
    box, _ = hebbian_run
    (checkpoint,) = (box.tmp / "output" / "models").glob("mnist-fashion-heb-*_m_2.pt")
    target = sandbox.tmp / "output" / "models" / "heb-mnist-fashion-20200607-015911_m_100_acc=0.855.pth"
    target.parent.mkdir(parents=True)
    shutil.copy(checkpoint, target)  # the file name supervised.py hard-codes
    module = sandbox.run("supervised.py", run_name="supervised")
    spy = Spy(monkeypatch)
    params = {"train_batch_size": 10, "val_batch_size": 20, "val_split": 0.5, "epochs": 2, "lr": 1e-3,
              "train_subset": 40, "train_all": False}
    module["main"](params, dataset_name="mnist-fashion", transfer_learning=True)
    (run,) = spy.of(compat_trainers.SupervisedTrainer)
    hebbian_filters = torch.load(checkpoint, weights_only=True)["conv1.weight"]
    assert torch.equal(run["before"]["conv1.weight"], hebbian_filters)  # loaded
    assert not changed(run, "conv1.weight")  # and frozen
    assert changed(run, "linear1.weight")
    assert run["trainer"].engine.state.epoch == 2
    out = capsys.readouterr()
    assert "Validation epoch 2: accuracy=" in out.out + out.err  # TqdmLogger's lines
    assert list((sandbox.tmp / "output" / "models").glob("mnist-fashion-sup-*-tl_m_*_acc=*.pt"))


@pytest.mark.data
def test_test_script_evaluates_the_saved_model(sandbox, capsys, tiny_data_root):
    import models  # the scripts' own module, from the sandbox

    torch.manual_seed(0)
    model = models.create_fc1_model([28 ** 2, 2000], n=1, batch_norm=True)
    with torch.no_grad():  # BatchNorm statistics that are not the defaults, so that loading them matters
        model.batch_norm.running_mean.uniform_(-1, 1)
        model.batch_norm.running_var.uniform_(0.5, 2)
    path = sandbox.tmp / "output" / "models" / "heb-mnist-fashion-20200426-101420_m_500_acc=0.852.pth"
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    sandbox.run("test.py")
    printed = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    # independent evaluation: the IDX files read with numpy, float64 forward pass in eval mode
    images = read_idx(tiny_data_root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte")
    labels = read_idx(tiny_data_root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte")
    x = torch.from_numpy(images.astype(np.float64) / 255.0).reshape(-1, 784)
    bn = model.batch_norm
    h = x @ model.linear1.weight.double().t()
    h = (h - bn.running_mean.double()) / torch.sqrt(bn.running_var.double() + bn.eps)
    h = torch.relu(h * bn.weight.double() + bn.bias.double())
    logits = h @ model.linear2.weight.double().t() + model.linear2.bias.double()
    y = torch.from_numpy(labels.astype(np.int64))
    assert printed["accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()), abs=1e-12)
    assert printed["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-4)
