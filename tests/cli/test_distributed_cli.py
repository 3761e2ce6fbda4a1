"""``hebbian train`` data-parallel from the command line equals one process (issue 10).

One ``idist.Parallel(backend="gloo", nproc_per_node=2)`` launch (module fixture) runs ``hebbian train`` (the
command's ``main``) for every registered rule and GHL in both processes; 147 digits in global batches of 16 leave a
last batch of 3, split 2/1 over the ranks (GHL weights each rank's gradient by its share). The final checkpoints are
compared with one-process runs of the same command. Separately, ``hebbian train --nproc 2`` (which spawns its
processes itself) and ``torchrun`` (slow) are run as real commands.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import ignite.distributed as idist
import pytest
import torch

from hebbian.cli import main
from hebbian.rules import list_rules
from hebbian.trainers.checkpoint import latest_checkpoint, load_checkpoint

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
TOL = 1e-5  # float rounding of sums reduced in another order, over 20 iterations

CONFIG = """\
name: dist
seed: 0
data: {name: digits, train_limit: 147, test_limit: 60, batch_size: 16}
model: {name: krotov_fc, width: 0.05}
rule: {name: krotov, params: {p: 3.0, k: 7, delta: 0.4}}
train: {epochs: 2, lr: 0.2, schedule: linear, init: normal}
probe: {epochs: 0, control: false}
checkpoint: {every: 1, n_saved: 1}
log: {progress: false, tensorboard: false}
recipes:
  hebb: {train: {lr: 0.001, init: unit, schedule: constant}}
  oja: {train: {lr: 0.001, init: unit, schedule: constant}}
  oja_subspace: {train: {lr: 0.001, init: unit, schedule: constant}}
  sanger: {train: {lr: 0.01, init: unit, schedule: constant}}
  competitive_oja: {train: {lr: 0.01, init: unit, schedule: constant}}
  instar: {train: {lr: 0.05, init: unit, schedule: constant}}
  softhebb: {train: {lr: 0.02, init: softhebb, schedule: constant}}
  swta: {train: {lr: 0.05, init: unit, schedule: constant}}
  hpca: {train: {lr: 0.05, init: unit, schedule: constant}}
  ghl: {train: {optimizer: sgd, lr: 0.05, head_lr: 0.1, init: unit, schedule: cosine}}
  supervised_instar: {model: {width: 0.005}, train: {lr: 0.05, init: unit, schedule: constant}}
  bcm: {rule: {params: {tau: 5}}, train: {lr: 0.002, init: unit, schedule: constant}}
  foldiak: {model: {name: foldiak_fc}, train: {lr: 0.02, init: unit, schedule: constant}}
  reward_modulated: {train: {lr: 0.03, init: unit}}
  random_feedback: {train: {lr: 0.5, init: unit}}
"""

RULES = list_rules()  # every registered rule, GHL included


def _worker(local_rank: int, config: str, out: str) -> None:
    from hebbian.config import resolve_config
    from hebbian.experiment import Experiment

    rank = idist.get_rank()
    report = {}
    for rule in RULES:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["train", config, "--rule", rule, "--out", str(Path(out) / rule)])
        report[rule] = (code, err.getvalue())
    # a usage error: every rank stops with code 2, only rank 0 says why
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        report["refused"] = (main(["train", config, "--out", str(Path(out) / "krotov")]), err.getvalue())
    # each rank's share of every global batch
    exp = Experiment(resolve_config(config))
    report["batches"] = [b[1].clone() for b in exp.train_loader]
    torch.save(report, Path(out) / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "dist.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def two(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUDA_VISIBLE_DEVICES", "")
        mp.setenv("OMP_NUM_THREADS", "1")
        with idist.Parallel(backend="gloo", nproc_per_node=WORLD, master_port=_free_port(),
                            timeout=datetime.timedelta(seconds=300)) as parallel:
            parallel.run(_worker, str(config), str(out))
    return out


@pytest.fixture(scope="module")
def one(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    for rule in RULES:
        assert main(["train", str(config), "--rule", rule, "--out", str(out / rule)]) == 0, rule
    return out


def final(run: Path) -> dict:
    return load_checkpoint(latest_checkpoint(run / "checkpoints"))


def max_difference(a: dict, b: dict) -> float:
    assert a["trainer"]["iteration"] == b["trainer"]["iteration"] == 20  # 10 global batches per epoch, 2 epochs
    assert a["model"].keys() == b["model"].keys()
    return max((a["model"][k].double() - b["model"][k].double()).abs().max().item() for k in a["model"])


@pytest.mark.parametrize("rule", RULES)
def test_two_processes_equal_one_process(two, one, rule):
    reports = [torch.load(two / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for r in range(WORLD):
        code, err = reports[r][rule]
        assert code == 0, err
    diff = max_difference(final(two / rule), final(one / rule))
    assert diff <= TOL, f"{rule}: 2 processes vs 1: max |diff| {diff:.3g}"
    metrics = json.loads((two / rule / "metrics.json").read_text())
    assert metrics["processes"] == WORLD and metrics["train_images"] == 147
    assert sorted(p.name for p in (two / rule).iterdir()) == [  # rank 0 wrote, once
        ".hebbian-run", "checkpoints", "config.yaml", "filters.png", "metrics.json", "provenance.json"]
    trained = final(one / rule)["model"]["linear1.weight"]
    assert (trained - final(two / rule)["model"]["linear1.weight"]).abs().max() <= TOL


def test_each_process_trains_on_its_share_of_every_global_batch(two, config):
    from hebbian.config import resolve_config
    from hebbian.experiment import Experiment

    shares = [torch.load(two / f"rank{r}.pt", weights_only=True)["batches"] for r in range(WORLD)]
    whole = [b[1] for b in Experiment(resolve_config(config)).train_loader]
    assert [len(b) for b in shares[0]] == [8] * 9 + [2] and [len(b) for b in shares[1]] == [8] * 9 + [1]
    for batch, a, b in zip(whole, *shares):  # the labels of rank 0 and rank 1 make up the global batch
        assert torch.equal(batch[0::2], a) and torch.equal(batch[1::2], b)


def test_a_usage_error_stops_every_process_and_is_reported_once(two):
    reports = [torch.load(two / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert [r["refused"][0] for r in reports] == [2, 2]
    assert reports[0]["refused"][1].startswith("hebbian: error: ") and "already holds a run" in reports[0]["refused"][1]
    assert reports[1]["refused"][1] == ""


def test_nproc_flag_spawns_the_processes(one, config, tmp_path):
    out = tmp_path / "ghl"
    done = subprocess.run([sys.executable, "-m", "hebbian.cli", "train", str(config), "--rule", "ghl", "--nproc", "2",
                           "--out", str(out)], env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run folder:") == 1 and "Traceback" not in done.stderr
    assert max_difference(final(out), final(one / "ghl")) <= TOL
    assert json.loads((out / "metrics.json").read_text())["processes"] == 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="needs torchrun")
def test_torchrun_shards_and_writes_once(one, config, tmp_path):
    out = tmp_path / "krotov"
    done = subprocess.run(["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "hebbian.cli", "train",
                           str(config), "--rule", "krotov", "--out", str(out)],
                          env={**env(), "CUDA_VISIBLE_DEVICES": ""}, cwd=str(ROOT), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run folder:") == 1
    assert max_difference(final(out), final(one / "krotov")) <= TOL
    assert json.loads((out / "metrics.json").read_text())["processes"] == 2
