"""TensorBoard's HParams table of a comparison: method and seed first, then what varies, constants not as columns;
the experiment TensorBoard's own backend builds from the log folder is checked, not only what was written."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest

from hebbian.visualizers.hparams import (
    HPARAM_METRICS,
    comparison_experiment,
    constant_hparams,
    declare_comparison,
    declared_above,
    final_metrics,
    log_hparams,
    varying_hparams,
)


def trial(method: str, seed: int, lr: float, rule: Dict[str, Any]) -> Dict[str, Any]:
    """Shaped like hebbian.runs.hparams_of: constants sort before method and seed (batch_size, dataset, epochs)."""
    return {"method": method, "kind": "backprop" if method == "backprop" else "hebbian", "seed": seed,
            "dataset": "digits", "epochs": 10, "batch_size": 64, "lr": lr, "schedule": "constant", "rule": rule}


TRIALS = [trial(m, s, lr, rule) for s in (0, 1) for m, lr, rule in
          (("krotov", 0.2, {"p": 3.0, "k": 7}), ("softhebb", 0.05, {"t_inv": 1.0}), ("backprop", 0.01, {}))]


def test_what_varies_is_found_and_the_constants_are_not_columns():
    assert varying_hparams(TRIALS) == ["kind", "lr", "method", "rule.k", "rule.p", "rule.t_inv", "seed"]
    assert constant_hparams(TRIALS) == {"batch_size": 64, "dataset": "digits", "epochs": 10, "schedule": "constant"}
    experiment = comparison_experiment(TRIALS)
    names = [h.name for h in experiment.hparam_infos]
    assert names == ["method", "seed", "kind", "lr", "rule.k", "rule.p", "rule.t_inv"]
    assert [h.name for h in experiment.hparam_infos if h.differs] == ["method", "seed"]
    assert [m.name.tag for m in experiment.metric_infos] == [f"final/{k}" for k, _ in HPARAM_METRICS]
    assert experiment.metric_infos[0].display_name == "probe test accuracy"
    method = experiment.hparam_infos[0]
    assert sorted(method.domain_discrete) == ["backprop", "krotov", "softhebb"]
    lr = experiment.hparam_infos[3]
    assert (lr.domain_interval.min_value, lr.domain_interval.max_value) == (0.01, 0.2)


def tensorboard_experiment(logdir: Path):
    """The experiment TensorBoard's HParams plugin serves for ``logdir`` (its Python backend, as --load_fast=false)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    ctx = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), multiplexer=mux, data_provider=provider))
    request = context.RequestContext()
    return ctx.experiment_from_metadata(request, "", True, ctx.hparams_metadata(request, ""),
                                        ctx.hparams_from_data_provider(request, "", None)), ctx, request


def run_dirs(root: Path) -> List[Path]:
    return [root / t["method"] / f"seed{t['seed']}" / "tb" for t in TRIALS]


def test_tensorboard_shows_method_and_seed_first_and_one_declaration_governs(tmp_path):
    from tensorboard.plugins.hparams import metadata

    root = tmp_path / "cmp"
    declare_comparison(root, TRIALS)
    for i, (t, folder) in enumerate(zip(TRIALS, run_dirs(root))):
        assert declared_above(folder) == root
        log_hparams(folder, t, final_metrics({"probe_test_accuracy": 0.9 + i / 100, "probe_gain": 0.05}))
    experiment, ctx, request = tensorboard_experiment(root)
    shown = [h.name for h in experiment.hparam_infos][:5]  # the dashboard checks the first five
    assert shown == ["method", "seed", "kind", "lr", "rule.k"]  # was: batch_size, dataset, epochs, init, kind
    assert not {"batch_size", "dataset", "epochs", "schedule"} & {h.name for h in experiment.hparam_infos}
    assert [m.display_name for m in experiment.metric_infos][:3] == ["probe test accuracy", "control test accuracy",
                                                                     "gain over control"]
    declarations = [run for run, tags in ctx.hparams_metadata(request, "").items() if metadata.EXPERIMENT_TAG in tags]
    assert declarations == ["."]  # the comparison's, not one per trial
    sessions = [run for run, tags in ctx.hparams_metadata(request, "").items()
                if metadata.SESSION_START_INFO_TAG in tags]
    assert len(sessions) == len(TRIALS)


def test_a_run_on_its_own_declares_its_metrics_and_method_and_seed_first(tmp_path):
    folder = tmp_path / "run" / "tb"
    assert declared_above(folder) is None
    log_hparams(folder, TRIALS[0], final_metrics({"probe_test_accuracy": 0.9, "test_accuracy": None}))
    experiment, _, _ = tensorboard_experiment(tmp_path / "run")
    assert [h.name for h in experiment.hparam_infos][:2] == ["method", "seed"]
    assert [m.name.tag for m in experiment.metric_infos] == ["final/probe_test_accuracy"]


def test_constant_settings_are_written_as_a_text_table(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    declare_comparison(tmp_path, TRIALS)
    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    text = acc.Tensors("comparison/constant_settings/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| batch_size | 64 |" in text and "| schedule | constant |" in text and "all 6 trials" in text


@pytest.mark.parametrize("metrics,expected", [({"probe_test_accuracy": 0.5, "rule": "x", "dead_units": None},
                                               {"final/probe_test_accuracy": 0.5})])
def test_final_metrics_keep_the_declared_ones_that_the_run_has(metrics, expected):
    assert final_metrics(metrics) == expected
