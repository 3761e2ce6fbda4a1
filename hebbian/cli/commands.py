"""The sub-commands ``train``, ``evaluate``, ``visualize``, ``list`` and ``config`` (``compare`` is in its module)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

from hebbian.config import SCHEMA, Field, dump, list_configs, load_file, method_config, resolve_config
from hebbian.errors import UsageError
from hebbian.cli.main import flag_overrides


def run_config(args: argparse.Namespace) -> Dict[str, Any]:
    """The config of ``train`` / ``config``: the file (with ``--resume`` and no file: the run's ``config.yaml``), its
    recipe for the method (``--rule``, else the file's rule), then ``--set`` and the flags: the same config that
    ``compare`` runs for that method."""
    overrides = flag_overrides(args)
    config = args.config
    if config is None and getattr(args, "resume", None) is not None:
        from hebbian.runs import find_resume_source

        config = find_resume_source(args.resume)[0] / "config.yaml"
    base = resolve_config(config, [(k, v) for k, v in overrides if k != "rule.name"])
    return method_config(base, getattr(args, "rule", None) or base["rule"]["name"], overrides)


def train(args: argparse.Namespace) -> int:
    """``hebbian train CONFIG``: one run; prints a one-line summary and where the outputs went.

    With ``--nproc N`` (N > 1) the run trains in N processes spawned through ``ignite.distributed.Parallel``; started
    by ``torchrun`` it joins the processes torchrun started. Exit code 1 when the rule diverged (a non-finite update
    stopped training; the run is still evaluated), 2 for usage errors.
    """
    import ignite.distributed as idist

    from hebbian.experiment import select_device
    from hebbian.runs.launch import check_process_count, launched_by_torchrun, run_parallel

    if getattr(args, "config", None) is None and args.resume is None:
        raise UsageError("give a config (a file or a packaged name: hebbian list configs), or --resume RUN")
    if idist.get_world_size() > 1:  # already one process of a data-parallel run
        return _train(args)
    torchrun = launched_by_torchrun()
    if torchrun and args.nproc not in (None, 1):
        raise UsageError("--nproc: this process was started by torchrun, which sets the number of processes; "
                         "leave --nproc out")
    if not torchrun and (args.nproc or 1) == 1:
        return _train(args)
    cfg = run_config(args)  # checked once before any process starts
    if cfg["rule"]["name"] in ("backprop", "random"):
        raise UsageError(f"--nproc / torchrun: data-parallel training is implemented for the Hebbian rules and GHL; "
                         f"run {cfg['rule']['name']!r} in one process")
    backend = "nccl" if select_device(cfg["device"]).type == "cuda" else "gloo"
    if not torchrun:
        check_process_count(args.nproc, backend, force=args.force)
    return run_parallel(_train_rank, args, nproc=None if torchrun else args.nproc, backend=backend)


def _train_rank(args: argparse.Namespace) -> int:
    """One process of a data-parallel ``train`` (errors as exit codes; only rank 0 prints them)."""
    from hebbian.cli.main import run_command

    return run_command(_train, args)


def _train(args: argparse.Namespace) -> int:
    import ignite.distributed as idist

    from hebbian.runs import RUN_ENTRIES, default_run_dir, find_resume_source, run, summary_line

    cfg = run_config(args)
    if args.resume is not None and args.out is None:
        run_dir = find_resume_source(args.resume)[0]  # a resumed run goes on in its own folder
    else:
        run_dir = default_run_dir(cfg)
    allow = [key for group in args.allow_changes for key in group]
    if allow and args.resume is None:
        raise UsageError("--allow-change only applies with --resume")
    metrics = run(cfg, run_dir, resume=args.resume, overwrite=args.overwrite, allow_changes=allow).metrics
    if idist.get_rank() == 0:
        print(summary_line(metrics))
        written = [f"{n}/" if (run_dir / n).is_dir() else n for n in RUN_ENTRIES if (run_dir / n).exists()]
        print(f"run folder: {run_dir} ({', '.join(written)})")
    return 1 if metrics.get("diverged") else 0


def _run_overrides(args: argparse.Namespace) -> List[Any]:
    from hebbian.config import parse_override

    pairs = [parse_override(text) for text in args.overrides]
    for dest, key in (("data_root", "data.root"), ("device", "device"), ("probe_epochs", "probe.epochs")):
        if getattr(args, dest, None) is not None:
            pairs.append((key, getattr(args, dest)))
    return pairs


def evaluate(args: argparse.Namespace) -> int:
    """``hebbian evaluate CHECKPOINT``: linear-probe (and network) accuracy of a saved run; writes ``evaluation.json``."""
    from hebbian.files import write_atomic
    from hebbian.runs import load_run

    exp, run_dir, ckpt = load_run(args.checkpoint, _run_overrides(args))
    metrics: Dict[str, Any] = {"checkpoint": str(ckpt), "rule": exp.cfg["rule"]["name"],
                               "dataset": exp.data.info.name, **exp.evaluate()}
    write_atomic(run_dir / "evaluation.json", json.dumps(metrics, indent=2) + "\n")
    shown = [f"{k.replace('_', ' ')} {100 * v:.2f}%" for k, v in metrics.items() if k.endswith("accuracy")]
    print(f"{metrics['rule']} on {metrics['dataset']} ({ckpt}): " + " | ".join(shown))
    return 0


def visualize(args: argparse.Namespace) -> int:
    """``hebbian visualize CHECKPOINT``: the filters of a saved run's Hebbian layer as a PNG; with
    ``--over-training`` the filters at every kept checkpoint (and before training) as a strip PNG or an animated GIF."""
    from pathlib import Path

    from hebbian.errors import UsageError
    from hebbian.runs import load_run, prepare_run_dir
    from hebbian.visualizers import plot_filters, save_figure

    if args.max_filters < 1:
        raise UsageError(f"--max-filters must be a positive integer, got {args.max_filters}")
    exp, run_dir, ckpt = load_run(args.checkpoint, [("probe.epochs", 0)])
    layer = args.layer or exp.layers[0]
    modules = dict(exp.model.named_modules())
    if layer not in modules or not hasattr(modules[layer], "weight"):
        raise UsageError(f"--layer {layer!r} is not a layer with weights; Hebbian layers: {', '.join(exp.layers)}")
    default = "filters_over_training.png" if getattr(args, "over_training", False) else "filters.png"
    output = Path(args.output) if args.output else run_dir / default
    weight = modules[layer].weight.detach().cpu()
    input_shape = exp.data.input_shape if weight.dim() == 2 and layer == exp.layers[0] else None
    title = f"{exp.cfg['rule']['name']}: {layer}"
    if getattr(args, "over_training", False):
        if output.suffix.lower() not in (".png", ".gif"):
            raise UsageError(f"-o must name a .png (strip) or .gif (animation) file with --over-training, got "
                             f"{str(output)!r}")
        snapshots, label = _weights_over_training(exp, run_dir, layer)
        prepare_run_dir(output.parent)
        _save_over_training(snapshots, output, input_shape, args.max_filters, label, title)
        print(f"filters of {layer} at {len(snapshots)} steps ({label}s {', '.join(map(str, snapshots))}) from "
              f"{run_dir / 'checkpoints'} -> {output}")
        return 0
    prepare_run_dir(output.parent)
    fig, _ = plot_filters(weight, input_shape, args.max_filters, title=title)
    save_figure(fig, output)
    print(f"filters of {layer} ({tuple(weight.shape)}) from {ckpt} -> {output}")
    return 0


def _weights_over_training(exp: Any, run_dir: Any, layer: str) -> Any:
    """``({step: weight}, label)``: a Hebbian layer's weights before training (rebuilt from the run's seed) and the
    layer's weights in every checkpoint of ``RUN/checkpoints``; steps are epochs when every checkpoint falls on an
    epoch's end, else iterations."""
    import re

    from hebbian.trainers.checkpoint import InvalidCheckpointError, NonFiniteCheckpointError, resume_from

    module = dict(exp.model.named_modules())[layer]

    numbered = sorted((int(m.group(1)), f) for f in (run_dir / "checkpoints").glob("*.pt")
                      if (m := re.search(r"_(\d+)\.pt$", f.name)))
    if len(numbered) < 2:
        raise UsageError(
            f"{str(run_dir)!r} kept {len(numbered)} checkpoint(s); --over-training draws the filters at every kept "
            f"checkpoint: train with --set checkpoint.every=1 --set checkpoint.n_saved=N (N >= the epochs) to keep one "
            f"per epoch")
    per_epoch = len(exp.train_loader)
    label = "epoch" if all(step % per_epoch == 0 for step, _ in numbered) else "iteration"
    snapshots = {}
    for step, path in numbered:
        try:
            resume_from(path, {"model": exp.model}, map_location=exp.device)
        except (InvalidCheckpointError, NonFiniteCheckpointError) as err:
            raise UsageError(" ".join(str(err).split())) from None
        snapshots[step // per_epoch if label == "epoch" else step] = module.weight.detach().cpu().clone()
    if layer in exp.layers:
        with exp.initial_state():
            snapshots = {0: module.weight.detach().cpu().clone(), **snapshots}
    return snapshots, label


def _save_over_training(snapshots: Dict[int, Any], output: Any, input_shape: Any, max_filters: int, label: str,
                        title: str) -> None:
    from hebbian.visualizers import plot_filters_over_training, save_figure, save_filter_animation

    if output.suffix.lower() == ".gif":
        save_filter_animation(snapshots, output, input_shape, max_filters, label=label, title=title)
    else:
        fig, _ = plot_filters_over_training(snapshots, input_shape, max_filters, label=label, title=title)
        save_figure(fig, output)


def _keys(schema: Dict[str, Any], prefix: str = "") -> List[str]:
    lines = []
    for key, spec in schema.items():
        if isinstance(spec, dict):
            lines += _keys(spec, f"{prefix}{key}.")
        elif isinstance(spec, Field):
            default = json.dumps(spec.default) if not isinstance(spec.default, str) else spec.default
            lines.append(f"  {prefix + key:<24} {spec.help} [default: {default}]")
    return lines


def list_(args: argparse.Namespace) -> int:
    """``hebbian list [rules|probes|models|datasets|configs|keys]``."""
    from hebbian.data import get_dataset_info, list_datasets
    from hebbian.models import get_model_info, list_models
    from hebbian.rules import rule_infos

    what = args.what
    sections = []
    if what in ("all", "rules"):
        lines = [f"  {i.name:<18} {i.description}" for i in rule_infos()]
        lines += ["  backprop           baseline: the whole network trained end to end by backprop",
                  "  random             baseline: no training (random features)"]
        sections.append(("rules", lines))
    if what in ("all", "probes"):
        from hebbian.probes import get_probe_info, list_probes

        sections.append(("probes (probe.protocol)", [f"  {n:<18} {get_probe_info(n).description}"
                                                      for n in list_probes()]))
    if what in ("all", "models"):
        sections.append(("models", [f"  {n:<18} {get_model_info(n).description}" for n in list_models()]))
    if what in ("all", "datasets"):
        lines = []
        for n in list_datasets():
            info = get_dataset_info(n)
            lines.append(f"  {n:<18} {info.channels}x{info.size}x{info.size}, {info.num_classes} classes, "
                         f"{info.source}")
        sections.append(("datasets", lines))
    if what in ("all", "configs"):
        lines = []
        for n in list_configs():
            description = load_file(n).get("description") or ""
            lines.append(f"  {n:<28} {' '.join(str(description).split())}")
        sections.append(("configs (hebbian train NAME / hebbian compare NAME)", lines))
    if what == "keys":
        sections.append(("config keys (--set KEY=VALUE)", _keys(SCHEMA)))
    for title, lines in sections:
        print(f"{title}:")
        print("\n".join(lines))
    return 0


def show_config(args: argparse.Namespace) -> int:
    """``hebbian config [CONFIG] [overrides]``: print the resolved config."""
    print(dump(run_config(args)), end="")
    return 0
