"""What a finished run reports: the one-line summary and the HParams entries of TensorBoard."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from hebbian.config import Config


def hparams_of(cfg: Config, kind: str) -> Dict[str, Any]:
    """The settings that tell runs apart: method, seed, data, model, optimizer, schedule, init and the rule's
    hyperparameters."""
    t = cfg["train"]
    return {"method": cfg["rule"]["name"], "kind": kind, "seed": cfg["seed"], "dataset": cfg["data"]["name"],
            "model": cfg["model"]["name"], "width": cfg["model"]["width"], "epochs": t["epochs"], "lr": t["lr"],
            "optimizer": t["optimizer"], "schedule": t["schedule"], "init": t["init"],
            "batch_size": cfg["data"]["batch_size"], "probe": cfg["probe"]["protocol"],
            "rule": dict(cfg["rule"]["params"])}


def summary_line(metrics: Mapping[str, Any]) -> str:
    """One line: method, dataset, accuracies (and the untrained control's, with the gain), epochs, wall time."""
    parts = [f"{metrics['rule']} on {metrics['dataset']} ({metrics['model']}, {metrics['epochs']} epochs)"]
    for key, label in (("test_accuracy", "test"), ("probe_test_accuracy", "probe test"),
                       ("control_probe_test_accuracy", "untrained control"), ("probe_train_accuracy", "probe train")):
        if key in metrics:
            parts.append(f"{label} {100 * metrics[key]:.2f}%")
    if metrics.get("probe_gain") is not None:
        parts.append(f"gain {100 * metrics['probe_gain']:+.2f} points")
    parts.append(f"{metrics['wall_seconds']:.1f} s")
    if metrics.get("diverged"):
        evaluated = str(metrics.get("evaluated_weights", ""))
        if evaluated.startswith("none"):
            note = "the weights became non-finite before the first checkpoint: not evaluated"
        elif evaluated:
            note = f"evaluated with the last finite checkpoint, {evaluated.split()[0]}"
        else:
            note = "evaluated with the last finite weights"
        parts.append(f"DIVERGED in epoch {metrics['epochs']} ({note})")
    return " | ".join(parts)
