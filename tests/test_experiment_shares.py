"""hebbian.experiment: ``train.shares`` from the config (one process computing each batch as N processes do).

Its equality with real data-parallel processes is tested on the trainer (``tests/trainers/test_distributed.py``);
here: the config reaches the trainer, null and 1 are today's path, and every bad value is a one-line error naming
``train.shares``.
"""

from __future__ import annotations

import ignite.distributed as idist
import pytest
import torch

from hebbian.config import method_config, resolve_config
from hebbian.errors import ConfigError
from hebbian.experiment import Experiment, check_config, load_data


@pytest.fixture(scope="module")
def base():
    return resolve_config("compare_digits", ["log.progress=false", "train.epochs=1", "probe.epochs=0"])


@pytest.fixture(scope="module")
def data(base):
    return load_data(base)


def one_line_error(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and "'train.shares'" in message, message
    return message


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "true"])
def test_bad_values_are_refused_by_the_schema(bad):
    with pytest.raises(ConfigError) as err:
        resolve_config("compare_digits", [f"train.shares={bad}"])
    one_line_error(err)


@pytest.mark.parametrize("method", ["ghl", "backprop", "random"])
def test_methods_without_hebbian_batch_sums_refuse_shares(base, method):
    cfg = method_config(base, method, ["train.shares=2"])
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert f"not to {'ghl' if method == 'ghl' else method}" in one_line_error(err)
    method_config(base, method, ["train.shares=1"])  # 1: off, accepted everywhere
    check_config(method_config(base, method, ["train.shares=1"]))


def test_batches_that_do_not_split_into_the_shares_are_refused(base, data):
    n = len(data.train)
    for overrides, size in ((["data.batch_size=1"], 1), ([f"data.batch_size={n - 1}"], 1)):  # n % (n - 1) == 1
        cfg = method_config(base, "krotov", overrides + ["train.shares=2"])
        with pytest.raises(ConfigError) as err:
            Experiment(cfg, data)
        assert f"a batch of {size} images cannot be split into 2 shares" in one_line_error(err)


def test_in_a_data_parallel_run_shares_must_be_the_number_of_processes(base, data, monkeypatch):
    monkeypatch.setattr(idist, "get_world_size", lambda: 2)
    with pytest.raises(ConfigError) as err:
        Experiment(method_config(base, "krotov", ["train.shares=3"]), data)
    assert "use 2" in one_line_error(err)


def test_shares_reach_the_trainer_and_null_and_one_are_the_same_run(base, data):
    runs = {}
    for shares in ("null", "1", "2"):
        exp = Experiment(method_config(base, "krotov", [f"train.shares={shares}"]), data)
        assert exp.trainer.shares == (None if shares == "null" else int(shares))
        exp.fit()
        runs[shares] = {n: w.detach().clone() for n, w in exp.weights.items()}
    for name, weight in runs["null"].items():
        assert torch.equal(weight, runs["1"][name])
        assert not torch.equal(weight, exp.initial_weights[name])  # it trained
