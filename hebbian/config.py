"""Experiment configs: a declared schema, YAML files whose values are the defaults, and ``key.sub=value`` overrides.

A config is a nested ``dict``. :data:`SCHEMA` declares every key (its type, default and meaning); a YAML file only
lists what differs from the defaults, may name a ``base`` config to start from, and ``--set`` / dedicated flags
override it. :func:`resolve_config` merges the three and validates the result: an unknown key or a value of the
wrong type raises :class:`~hebbian.errors.ConfigError` naming the key and what was expected. The resolved config
is what a run saves as ``config.yaml``, so ``hebbian train RUN/config.yaml`` repeats the run.

Example::

    cfg = resolve_config("digits", ["train.epochs=3", "rule.name=oja"])
    cfg["train"]["epochs"]  # 3
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from hebbian.errors import ConfigError, UsageError

Config = Dict[str, Any]

#: Folder of the packaged configs (``hebbian list configs``).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Methods that are not registered learning rules.
BASELINES = ("backprop", "random")


@dataclass(frozen=True)
class Field:
    """One config key: accepted type(s), default, meaning, and an optional extra check.

    Args:
        kind: ``int``, ``float``, ``bool``, ``str``, ``list`` (of strings), ``dict`` (free-form mapping) or ``"any"``.
        default: the value when no config sets it.
        help: one line, shown in error messages and ``hebbian list keys``.
        optional: ``None`` is accepted.
        choices: allowed values (a sequence, or a callable returning one, evaluated lazily).
        minimum: smallest allowed number.
        check: ``value -> error message or None`` for anything else.
    """

    kind: Any
    default: Any
    help: str
    optional: bool = False
    choices: Optional[Union[Sequence[Any], Callable[[], Sequence[Any]]]] = None
    minimum: Optional[float] = None
    check: Optional[Callable[[Any], Optional[str]]] = None

    def expected(self) -> str:
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
                 list: "a list of strings", dict: "a mapping", "any": "any value"}
        text = names[self.kind]
        if self.minimum is not None:
            text += f" >= {self.minimum:g}"
        choices = self.allowed()
        if choices is not None:
            text = "one of " + ", ".join(map(str, choices))
        return text + (" or null" if self.optional else "")

    def allowed(self) -> Optional[List[Any]]:
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)

    def validate(self, key: str, value: Any) -> Any:
        """The value, converted where harmless (an int for a float key); raises :class:`ConfigError` otherwise."""
        if value is None:
            if self.optional:
                return None
            raise ConfigError(key, f"expected {self.expected()}, got null")
        value = self._coerce(key, value)
        choices = self.allowed()
        if choices is not None and value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(key, f"got {value!r}; expected one of {', '.join(map(str, choices))}{hint}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(key, f"expected {self.expected()}, got {value!r}")
        problem = self.check(value) if self.check is not None else None
        if problem:
            raise ConfigError(key, problem)
        return value

    def _coerce(self, key: str, value: Any) -> Any:
        kind = self.kind
        if kind is float and isinstance(value, str):
            value = _number(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        ok = {
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            bool: isinstance(value, bool),
            str: isinstance(value, str),
            list: isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
            dict: isinstance(value, Mapping),
            "any": True,
        }[kind]
        if not ok:
            raise ConfigError(key, f"expected {self.expected()}, got {value!r}")
        if kind is float:
            return float(value)
        if kind is list:
            return list(value)
        if kind is dict:
            return copy.deepcopy(dict(value))
        return value


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


def _number(text: str) -> Any:
    """``"1e-3"`` -> ``0.001`` (scientific notation without a dot, which YAML 1.1 leaves a string); else the text."""
    return float(text) if _NUMBER.match(text.strip()) else text


def _rule_names() -> List[str]:
    from hebbian.rules import list_rules

    return list_rules() + list(BASELINES)


def _dataset_names() -> List[str]:
    from hebbian.data import list_datasets

    return list_datasets()


def _model_names() -> List[str]:
    from hebbian.models import list_models

    return list_models()


def _check_normalize(value: Any) -> Optional[str]:
    expected = ("expected null, 'dataset' (per-channel mean/std of the training split), 'center' (per-pixel mean and "
                "overall std of the training split) or {mean: m, std: s}")
    if value in ("dataset", "center"):
        return None
    if not isinstance(value, Mapping) or set(value) != {"mean", "std"}:
        return f"{expected}, got {value!r}"
    for name in ("mean", "std"):
        v = value[name]
        numbers = v if isinstance(v, (list, tuple)) else [v]
        if not numbers or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            return f"{name} must be a number or a list of numbers (one per channel), got {v!r}"
        if name == "std" and not all(n > 0 for n in numbers):
            return f"std must be positive, got {v!r}"
    return None


def _probe_names() -> List[str]:
    from hebbian.probes import list_probes

    return list_probes()


def _check_l2_grid(value: Any) -> Optional[str]:
    ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value)
    return None if ok else f"expected a non-empty list of numbers >= 0, got {value!r}"


def _check_milestones(value: Any) -> Optional[str]:
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1 for v in value)
    return None if ok else f"expected a list of fractions of the epochs in (0, 1) (may be empty), got {value!r}"


_DEVICE = re.compile(r"^(auto|cpu|mps|(cuda|xpu)(:\d+)?)$")


def _check_device(value: str) -> Optional[str]:
    if _DEVICE.match(value):
        return None
    return f"expected 'auto', 'cpu', 'cuda', 'cuda:N' (N a device number) or 'mps', got {value!r}"


def _positive(what: str) -> Callable[[Any], Optional[str]]:
    return lambda v: None if v > 0 else f"expected {what} > 0, got {v!r} (0 would train nothing)"


def _plain_name(value: str) -> Optional[str]:
    """A run name is a name, never a path: it becomes a folder name under ``runs/``."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}", value):
        return None
    return f"expected a plain name (letters, digits, '.', '_', '+', '-'; no '/' or '..'), got {value!r}"


#: Every config key. Sections are nested dicts of :class:`Field`.
SCHEMA: Dict[str, Any] = {
    "name": Field(str, "run", "run name (default output folder runs/NAME-TIMESTAMP): letters, digits, '.', '_', "
                  "'+', '-'", check=_plain_name),
    "description": Field(str, "", "what the config reproduces"),
    "imports": Field(list, [], "modules (names, or paths to .py files) imported before the config is checked, so "
                     "that the rules and models they register can be named (hebbian --import; accumulates)"),
    "base": Field(str, None, "config to start from (packaged name or path relative to this file)", optional=True),
    "seed": Field(int, 0, "seed of the initial weights and of the data order", minimum=0),
    "device": Field(str, "auto", "'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N'", check=_check_device),
    "threads": Field(int, None, "torch intra-op CPU threads (default: torch's; 1 is fastest for tiny models on a "
                     "busy machine)", optional=True, minimum=1),
    "out": Field(str, None, "run folder (default runs/NAME-TIMESTAMP)", optional=True),
    "data": {
        "name": Field(str, "digits", "dataset", choices=_dataset_names),
        "root": Field(str, None, "data root (default $HEBBIAN_DATA_ROOT, ../shared/datasets, ./data)", optional=True),
        "download": Field(bool, False, "let torchvision download a missing dataset"),
        "train_limit": Field(int, None, "use only the first N training images", optional=True, minimum=1),
        "test_limit": Field(int, None, "use only the first N test images", optional=True, minimum=1),
        "normalize": Field("any", None, "null, 'dataset' (per channel), 'center' (per pixel) or {mean: m, std: s}", optional=True,
                           check=_check_normalize),
        "split": Field(str, "fixed", "train/test split: fixed (the dataset's own) or seeded (the two pooled and a "
                       "stratified test_fraction drawn with the run's seed: a new test set per seed)",
                       choices=("fixed", "seeded")),
        "test_fraction": Field(float, 0.2, "share of the pooled data tested on with split: seeded", minimum=0,
                               check=lambda v: None if 0 < v < 1 else f"expected a value in (0, 1), got {v!r}"),
        "batch_size": Field(int, 64, "training batch size", minimum=1),
        "eval_batch_size": Field(int, 1000, "batch size of feature extraction and evaluation", minimum=1),
    },
    "model": {
        "name": Field(str, "krotov_fc", "architecture (hebbian.models)", choices=_model_names),
        "width": Field(float, 1.0, "width multiplier of the hidden layers", minimum=1e-6),
        "options": Field(dict, {}, "extra keyword arguments of hebbian.models.create_model"),
    },
    "rule": {
        "name": Field(str, "krotov", "learning rule (hebbian list rules), or backprop / random", choices=_rule_names),
        "params": Field(dict, {}, "hyperparameters of the rule"),
        "layers": Field(dict, {}, "per-layer settings: {layer name or pattern: {params: {...}, lr: x}}"),
    },
    "train": {
        "epochs": Field(int, 1, "training epochs", minimum=1),
        "optimizer": Field(str, "local", "local (W += lr dW), sgd or adam", choices=("local", "sgd", "adam")),
        "lr": Field(float, 0.01, "learning rate (of the Hebbian layers, or of all layers for backprop)",
                    check=_positive("a learning rate")),
        "head_lr": Field(float, None, "GHL: learning rate of the backprop-trained parameters (default lr)",
                         optional=True, minimum=0),
        "momentum": Field(float, 0.0, "SGD momentum", minimum=0),
        "weight_decay": Field(float, 0.0, "L2 weight decay (GHL: of the Hebbian layers only)", minimum=0),
        "schedule": Field(str, "constant", "learning-rate schedule: constant, linear (to 0 over the epochs, per "
                          "epoch, as Krotov-Hopfield) or cosine (to 0, per iteration, as GHL)",
                          choices=("constant", "linear", "cosine")),
        "greedy_epochs": Field(int, None, "train the Hebbian layers one at a time, this many epochs each",
                               optional=True, minimum=1),
        "diverge_above": Field(float, 1e8, "a Hebbian layer whose largest |w| passes this at an epoch's end has "
                               "diverged: training stops and the run is marked diverged (null: no limit)",
                               optional=True, check=lambda v: None if v > 0 else f"expected a weight magnitude > 0 (null: no limit), got {v!r}"),
        "init": Field(str, "default", "initial Hebbian weights: default (the model's), normal (N(0,1), as "
                      "Krotov-Hopfield), unit (N(0,1) rows scaled to norm 1) or softhebb (radius-25 Gaussian)",
                      choices=("default", "normal", "unit", "softhebb")),
        "shares": Field(int, None, "N >= 2: one process computes each batch's sums as N data-parallel processes do "
                        "(a forward pass per share, rows r::N, added in rank order), equal to --nproc N bit for bit; "
                        "with --nproc N: add in rank order (Hebbian and three-factor methods; null or 1: off)",
                        optional=True, minimum=1),
    },
    "probe": {
        "protocol": Field(str, "logistic", "how the frozen features are read out (hebbian list probes): logistic "
                          "(default: standardised features, fitted to convergence, L2 chosen on a validation split), "
                          "readout, softhebb, pytorch_hebbian, ...", choices=_probe_names),
        "control": Field(bool, True, "also probe the untrained model (same initial weights): the method's control"),
        "epochs": Field(int, None, "readout epochs of the trained-readout protocols (0: no probe at all, any "
                        "protocol; default: the protocol's)", optional=True, minimum=0),
        "lr": Field(float, None, "readout learning rate (default: the protocol's)", optional=True, minimum=0),
        "batch_size": Field(int, None, "readout batch size (default: the protocol's)", optional=True, minimum=1),
        "dropout": Field(float, None, "dropout before the readout (default: the protocol's; SoftHebb 0.5)",
                         optional=True, minimum=0,
                         check=lambda v: None if v < 1 else f"expected a probability in [0, 1), got {v!r}"),
        "early_stopping": Field(int, None, "stop after this many epochs without a better validation accuracy, keeping "
                                "the best readout (pytorch-hebbian: 15)", optional=True, minimum=1),
        "validation_fraction": Field(float, None, "share of the training images held out for the probe's choices "
                                     "(default: the protocol's: 0.2 where a choice is made on them (logistic's L2, "
                                     "early stopping, a plateau schedule), none for softhebb and readout without "
                                     "them; 0 with early stopping monitors the test split, as pytorch-hebbian did)", optional=True, minimum=0,
                                     check=lambda v: None if v < 1 else f"expected a value in [0, 1), got {v!r}"),
        "plateau_patience": Field(int, None, "halve the readout lr after this many epochs without improvement "
                                  "(pytorch-hebbian: 5)", optional=True, minimum=1),
        "l2_grid": Field("any", None, "logistic probe: the candidate L2 strengths (default 1e-5 ... 1)",
                         optional=True, check=_check_l2_grid),
        "lr_milestones": Field("any", None, "halve the readout lr after these fractions of its epochs (default: the "
                               "protocol's; softhebb: 0.2, 0.35, ..., 0.9; [] for none)", optional=True,
                               check=_check_milestones),
    },
    "checkpoint": {
        "every": Field(int, 1, "save a checkpoint every N epochs (0: only at the end)", minimum=0),
        "n_saved": Field(int, 1, "how many checkpoints to keep", minimum=1),
    },
    "log": {
        "progress": Field(bool, None, "progress bars: null (default) when stderr is a terminal (else one line per "
                          "training epoch), true always (--progress), false never (--no-progress)", optional=True),
        "tensorboard": Field(bool, True, "write TensorBoard logs to RUN/tb"),
        "every": Field(int, 10, "log scalars every N iterations", minimum=1),
        "filters_every": Field(int, 1, "log the filter images every N epochs (0: never)", minimum=0),
    },
    "compare": {
        "rules": Field(list, [], "methods of `hebbian compare` (rules, backprop, random)"),
        "seeds": Field(int, 1, "how many seeds (seed, seed + 1, ...) every method and control runs with", minimum=1),
    },
    "recipes": Field(dict, {}, "per-method settings merged over this config whenever that method runs (train "
                     "--rule, compare, Python): {method: {section: {key: value}}}"),
}


def defaults() -> Config:
    """The config of :data:`SCHEMA`'s defaults."""
    return _defaults(SCHEMA)


def _defaults(schema: Mapping[str, Any]) -> Config:
    return {k: _defaults(v) if isinstance(v, dict) else copy.deepcopy(v.default) for k, v in schema.items()}


def field_at(key: str) -> Tuple[Optional[Field], str]:
    """The :class:`Field` that governs the dotted ``key`` and the rest of the key inside it (for free-form mappings).

    Raises:
        ConfigError: no such key (the message lists the keys of that section).
    """
    node: Any = SCHEMA
    parts = key.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, Field):
            if node.kind is dict:
                return node, ".".join(parts[i:])
            raise ConfigError(".".join(parts[:i]), f"is not a section; expected {node.expected()}")
        if part not in node:
            raise _unknown(".".join(parts[: i + 1]), node)
        node = node[part]
    if isinstance(node, dict):
        raise ConfigError(key, f"is a section; set one of its keys ({', '.join(node)})")
    return node, ""


def _unknown(key: str, section: Mapping[str, Any]) -> ConfigError:
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, list(section), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(key, f"unknown key{hint}; expected one of: {', '.join(section)}")


def validate(cfg: Mapping[str, Any], schema: Mapping[str, Any] = SCHEMA, prefix: str = "") -> Config:
    """A checked, completed copy of ``cfg``: missing keys get their defaults, values are type-checked.

    Raises:
        ConfigError: unknown key, wrong type or value (naming the dotted key and what was expected).
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(prefix.rstrip("."), f"expected a mapping of keys to values, got {cfg!r}")
    for key in cfg:
        if key not in schema:
            raise _unknown(prefix + str(key), schema)
    out: Config = {}
    for key, spec in schema.items():
        dotted = prefix + key
        if isinstance(spec, dict):
            section = cfg.get(key)
            if section is not None and not isinstance(section, Mapping):  # e.g. `train: 5`: never dropped silently
                raise ConfigError(dotted, f"is a section: expected a mapping of its keys ({', '.join(spec)}), "
                                          f"got {section!r}")
            out[key] = validate(section or {}, spec, dotted + ".")
        else:
            out[key] = spec.validate(dotted, cfg[key]) if key in cfg else copy.deepcopy(spec.default)
    return out


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> Config:
    """``base`` updated by ``update``, recursing into mappings (a copy; neither input changes)."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def list_configs() -> List[str]:
    """Names of the packaged configs (``hebbian/configs/*.yaml``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name: Union[str, Path], relative_to: Optional[Path] = None) -> Path:
    """The file of a config given as a path or a packaged config name (with or without ``.yaml``).

    Raises:
        UsageError-derived ConfigError: neither a file nor a packaged config.
    """
    path = Path(name)
    candidates = [path] if path.is_absolute() else ([relative_to / path] if relative_to else []) + [path]
    candidates.append(CONFIG_DIR / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    close = difflib.get_close_matches(path.stem, list_configs(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError("", f"config {str(name)!r} is neither a file nor a packaged config{hint}; "
                          f"packaged configs: {', '.join(list_configs())}")


def load_file(name: Union[str, Path], _seen: Tuple[Path, ...] = (), relative_to: Optional[Path] = None) -> Config:
    """A config file's mapping with its ``base`` chain merged in (not yet completed or validated)."""
    path = config_path(name, relative_to).resolve()
    if path in _seen:
        raise ConfigError("base", f"configs include each other in a cycle: {' -> '.join(map(str, _seen + (path,)))}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError("", f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    except UnicodeDecodeError as err:
        raise ConfigError("", f"{path} is not a UTF-8 text file (byte {err.start}: {err.reason}); a config is YAML "
                              "text") from None
    except OSError as err:
        raise ConfigError("", f"cannot read {path}: {err.strerror or err}") from None
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError("", f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    if isinstance(data.get("imports"), list):  # a file named by a config is found next to that config
        from hebbian.plugins import normalise_spec

        data = {**data, "imports": [normalise_spec(s, path.parent) if isinstance(s, str) else s
                                    for s in data["imports"]]}
    base = data.get("base")
    if base is None:
        return dict(data)
    if not isinstance(base, str):
        raise ConfigError("base", f"expected a config name or path, got {base!r}")
    return merge_over_base(load_file(base, _seen + (path,), path.parent), data)


def merge_over_base(base: Mapping[str, Any], child: Mapping[str, Any]) -> Config:
    """``child`` merged over its ``base`` config (a copy, with ``base: null``). The base's ``rule.params`` and
    ``rule.layers`` belong to the base's rule: a child that names another rule starts without them, as another
    method does in :func:`method_config`."""
    base_rule, child_rule = base.get("rule"), child.get("rule")
    if isinstance(base_rule, Mapping) and isinstance(child_rule, Mapping) and "name" in base_rule \
            and "name" in child_rule and child_rule["name"] != base_rule["name"]:
        base = {**base, "rule": _rule_section(child_rule["name"])}
    merged = deep_merge(base, child)
    merged["base"] = None
    return merged


def _rule_section(name: Any) -> Config:
    """A rule section for ``name`` that inherits no other rule's parameters."""
    return {"name": name, "params": {}, "layers": {}}


def parse_override(text: str) -> Tuple[str, Any]:
    """``"train.epochs=3"`` -> ``("train.epochs", 3)``; the value is read as YAML (numbers, lists, true/false, null)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("", f"override {text!r} must look like key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, _number(value) if isinstance(value, str) else value


def set_key(cfg: Config, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` in place (checked against the schema; free-form mappings accept any key)."""
    field_at(key)
    parts = key.split(".")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        if node.get(part) is None:
            node[part] = {}
        elif not isinstance(node[part], dict):  # e.g. `train: 5` in a file, then --epochs: never drop it silently
            raise ConfigError(".".join(parts[: i + 1]), f"is a section: expected a mapping, got {node[part]!r}")
        node = node[part]
    node[parts[-1]] = value


def resolve_config(
    config: Optional[Union[str, Path, Mapping[str, Any]]] = None,
    overrides: Iterable[Union[str, Tuple[str, Any]]] = (),
) -> Config:
    """Defaults, then the config (file, packaged name or mapping), then the overrides; validated.

    Args:
        config: ``None`` (the defaults), a YAML path, a packaged config name, or a mapping.
        overrides: ``"key.sub=value"`` strings or ``(key, value)`` pairs, applied in order.

    Raises:
        ConfigError: see :func:`validate`, :func:`config_path`, :func:`parse_override`.
    """
    if config is None:
        data: Config = {}
    elif isinstance(config, Mapping):
        data = dict(config)
        if data.get("base"):
            data = merge_over_base(load_file(data["base"]), data)
    else:
        data = load_file(config)
    cfg = deep_merge(defaults(), data)
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        if key == "imports":  # accumulates: the config's imports, then those of each override
            value = list(cfg.get("imports") or []) + [v for v in SCHEMA["imports"].validate(key, value)
                                                      if v not in (cfg.get("imports") or [])]
        set_key(cfg, key, value)
    import_modules(cfg)
    return validate(cfg)


def import_modules(cfg: Config) -> None:
    """Import the config's ``imports`` (normalised: file paths absolute), before its rule and model names are
    checked.

    Raises:
        ConfigError: a bad list; UsageError: a module that cannot be imported or breaks the rule contract.
    """
    from hebbian.plugins import import_plugins, normalise_spec

    specs = SCHEMA["imports"].validate("imports", cfg.get("imports", []))
    cfg["imports"] = [normalise_spec(spec) for spec in specs]
    import_plugins(cfg["imports"])


def method_config(base: Config, method: str, overrides: Iterable[Union[str, Tuple[str, Any]]] = ()) -> Config:
    """The config that runs ``method``: ``base`` with ``recipes[method]`` merged in, then the overrides.

    This is the one place where a method's settings (learning rate, initial weights, optimizer, hyperparameters)
    are applied: ``hebbian train CONFIG --rule METHOD``, ``hebbian compare`` and Python all call it, so a method
    runs the same way everywhere. The base's ``rule.params`` and ``rule.layers`` belong to the base's rule: another
    method starts without them (its own come from its recipe or the overrides).

    Args:
        base: a resolved config.
        method: a registered rule, ``backprop`` or ``random``.
        overrides: ``"key.sub=value"`` strings or ``(key, value)`` pairs, applied after the recipe.

    Raises:
        ConfigError: a bad recipe (the key is reported as ``recipes.<method>.<key>``) or override.
        UsageError: an unknown method (named as ``--rule``'s, with the closest known name).
    """
    known = _rule_names()
    if method not in known:
        close = difflib.get_close_matches(str(method), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown rule {method!r} in --rule; known rules: {', '.join(known)}{hint}")
    recipe = base["recipes"].get(method) or {}
    if not isinstance(recipe, Mapping):
        raise ConfigError(f"recipes.{method}", f"expected a mapping of config sections, got {recipe!r}")
    if "recipes" in recipe:
        raise ConfigError(f"recipes.{method}.recipes", "a recipe cannot hold recipes")
    cfg = deep_merge(base, {})
    if method != base["rule"]["name"]:
        cfg["rule"] = _rule_section(method)
    cfg = deep_merge(cfg, recipe)
    cfg["rule"]["name"] = method
    try:
        cfg = validate(cfg)
    except ConfigError as err:
        raise ConfigError(f"recipes.{method}.{err.key}", str(err).split(": ", 1)[-1]) from None
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        if key not in ("rule.name", "imports"):  # the base holds the imports already (they accumulate)
            set_key(cfg, key, value)
    return validate(cfg)


def dump(cfg: Mapping[str, Any]) -> str:
    """The config as YAML (sections in schema order)."""
    return yaml.safe_dump(dict(cfg), sort_keys=False, default_flow_style=None, width=120)


def save(cfg: Mapping[str, Any], path: Union[str, Path]) -> Path:
    """Write the config as YAML to ``path`` (a new file renamed onto the name: never half-written, never through a
    link)."""
    from hebbian.files import write_atomic

    return write_atomic(path, dump(cfg))
