"""The config system: schema defaults, YAML files with a base, overrides, validation errors naming the key."""

from pathlib import Path

import pytest
import yaml

from hebbian.config import (
    ConfigError,
    config_path,
    defaults,
    deep_merge,
    dump,
    list_configs,
    parse_override,
    resolve_config,
    validate,
)


def test_defaults_validate_to_themselves():
    assert validate(defaults()) == defaults()


def test_overrides_are_read_as_yaml_and_applied_in_order():
    cfg = resolve_config(None, ["train.epochs=3", "train.lr=2e-2", "rule.params.p=3", "train.epochs=4",
                                "data.normalize={mean: 0.5, std: 0.5}", "compare.rules=[oja, krotov]"])
    assert cfg["train"]["epochs"] == 4
    assert cfg["train"]["lr"] == pytest.approx(0.02) and isinstance(cfg["train"]["lr"], float)
    assert cfg["rule"]["params"] == {"p": 3}
    assert cfg["data"]["normalize"] == {"mean": 0.5, "std": 0.5}
    assert cfg["compare"]["rules"] == ["oja", "krotov"]


def test_scientific_notation_without_a_dot_is_a_number(tmp_path: Path):
    (tmp_path / "c.yaml").write_text("train: {lr: 1e-3}\nprobe: {lr: 5E-4}\n")
    cfg = resolve_config(tmp_path / "c.yaml", ["rule.params.eps=2e-2"])
    assert (cfg["train"]["lr"], cfg["probe"]["lr"], cfg["rule"]["params"]["eps"]) == (1e-3, 5e-4, 2e-2)
    with pytest.raises(ConfigError, match="train.lr"):
        resolve_config(None, ["train.lr=1e-3x"])


def test_pairs_and_strings_are_both_accepted():
    assert resolve_config(None, [("seed", 7)])["seed"] == 7
    assert parse_override("out=") == ("out", "")
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])


@pytest.mark.parametrize("override,key,fragment", [
    ("train.epochz=3", "train.epochz", "did you mean 'epochs'"),
    ("trian.epochs=3", "trian", "unknown key"),
    ("train.epochs=three", "train.epochs", "expected an integer"),
    ("train.epochs=-1", "train.epochs", ">= 1"),
    ("train.lr=true", "train.lr", "expected a number"),
    ("rule.name=kortov", "rule.name", "did you mean 'krotov'"),
    ("data.name=imagenet", "data.name", "digits"),
    ("train.schedule=step", "train.schedule", "constant, linear, cosine"),
    ("data.normalize=yes", "data.normalize", "'dataset'"),
    ("data.normalize={mean: 0.5, std: 0}", "data.normalize", "std must be positive"),
    ("device=gpu", "device", "'cuda:N'"),
    ("train=3", "train", "is a section"),
    ("train.epochs.x=3", "train.epochs", "is not a section"),
])
def test_bad_keys_and_values_name_the_key_and_what_was_expected(override, key, fragment):
    with pytest.raises(ConfigError) as info:
        resolve_config(None, [override])
    assert info.value.key == key
    assert key in str(info.value) and fragment in str(info.value)


def test_unknown_rule_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"expected one of .*krotov.*softhebb.*backprop, random"):
        resolve_config(None, ["rule.name=nope"])


def test_file_with_base_chain_and_cycle(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("name: a\ntrain: {epochs: 5, lr: 0.5}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\ntrain: {lr: 0.25}\n")
    cfg = resolve_config(tmp_path / "b.yaml")
    assert (cfg["name"], cfg["train"]["epochs"], cfg["train"]["lr"], cfg["base"]) == ("b", 5, 0.25, None)
    (tmp_path / "c.yaml").write_text("base: d.yaml\n")
    (tmp_path / "d.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        resolve_config(tmp_path / "c.yaml")


def test_a_child_naming_another_rule_does_not_inherit_the_base_rules_parameters(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("rule: {name: krotov, params: {p: 4.0, k: 4}, layers: {'0': {lr: 1.0}}}\n")
    (tmp_path / "same.yaml").write_text("base: a.yaml\nrule: {name: krotov, params: {delta: 0.2}}\n")
    (tmp_path / "other.yaml").write_text("base: a.yaml\nrule: {name: oja, params: {}}\n")
    same = resolve_config(tmp_path / "same.yaml")["rule"]
    assert same["params"] == {"p": 4.0, "k": 4, "delta": 0.2} and same["layers"] == {"0": {"lr": 1.0}}
    other = resolve_config(tmp_path / "other.yaml")["rule"]
    assert (other["name"], other["params"], other["layers"]) == ("oja", {}, {})
    mapping = resolve_config({"base": str(tmp_path / "a.yaml"), "rule": {"name": "backprop"}})["rule"]
    assert (mapping["name"], mapping["params"], mapping["layers"]) == ("backprop", {}, {})


def test_bad_files_are_config_errors(tmp_path: Path):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "broken.yaml").write_text("train: {epochs: 3\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve_config(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_config(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="neither a file nor a packaged config"):
        resolve_config(tmp_path / "missing.yaml")


def test_dump_round_trips():
    cfg = resolve_config(None, ["data.normalize={mean: [0.5, 0.5, 0.5], std: 0.5}", "rule.layers={'0': {lr: 1}}"])
    assert validate(yaml.safe_load(dump(cfg))) == cfg


def test_packaged_configs_are_found_by_name():
    names = list_configs()
    assert "compare_digits" in names
    assert config_path("compare_digits") == config_path("compare_digits.yaml")


def test_deep_merge_does_not_modify_its_inputs():
    a, b = {"x": {"y": 1, "z": 2}}, {"x": {"y": 3}}
    assert deep_merge(a, b) == {"x": {"y": 3, "z": 2}}
    assert a == {"x": {"y": 1, "z": 2}} and b == {"x": {"y": 3}}


def test_probe_lr_milestones_reach_the_softhebb_protocol_and_are_checked():
    from hebbian.config import ConfigError, resolve_config
    from hebbian.experiment import probe_params

    cfg = resolve_config("deephebb_fashion_quarter", [("probe.lr_milestones", [])])
    assert probe_params(cfg)["lr_milestones"] == []
    assert "lr_milestones" not in probe_params(resolve_config("deephebb_fashion_quarter"))  # the protocol's default
    with pytest.raises(ConfigError, match="probe.lr_milestones"):
        resolve_config("deephebb_fashion_quarter", [("probe.lr_milestones", [1.5])])
    with pytest.raises(ConfigError, match="does not apply to the 'logistic' probe"):
        probe_params(resolve_config("compare_digits", [("probe.lr_milestones", [0.5])]))


def test_a_held_out_share_without_a_choice_is_refused_before_training():
    """SoftHebb's probe chooses nothing on held-out images (no early stopping, no plateau), so it holds none out by
    default and an explicit share is a one-line error naming the key, raised by check_config (before any training)."""
    from hebbian.config import ConfigError, resolve_config
    from hebbian.experiment import check_config, probe_params

    assert "validation_fraction" not in probe_params(resolve_config("deephebb_fashion_quarter"))
    cfg = resolve_config("deephebb_fashion_quarter", [("probe.validation_fraction", 0.2)])
    with pytest.raises(ConfigError, match=r"probe.validation_fraction.*0.2 holds out training images that the "
                                          r"'softhebb' probe chooses nothing on") as err:
        check_config(cfg)
    assert "\n" not in str(err.value)
    from hebbian.experiment import Data, check_probe_data
    from hebbian.data import get_dataset_info

    with pytest.raises(ConfigError, match="probe.validation_fraction"):  # what Experiment checks before training
        check_probe_data(cfg, Data(None, None, get_dataset_info("fashion-mnist")))
    chosen = resolve_config("deephebb_fashion_quarter", [("probe.validation_fraction", 0.2),
                                                          ("probe.early_stopping", 5)])
    assert probe_params(chosen)["validation_fraction"] == 0.2
    assert probe_params(resolve_config("krotov_fashion_conv"))["validation_fraction"] == 0.1  # pytorch_hebbian: chooses
