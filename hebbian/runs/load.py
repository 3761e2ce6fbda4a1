"""Loading a saved run back: its folder, its latest checkpoint and its experiment with the trained weights."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, List, Tuple, Union

from hebbian.errors import UsageError
from hebbian.experiment import Experiment


def runs_inside(folder: Path) -> List[Path]:
    """The run folders of a ``hebbian compare`` folder: ``<method>/seed<s>/`` holding a ``config.yaml``, sorted by
    method and seed (``[]`` for any other folder)."""
    found = [cfg.parent for cfg in Path(folder).glob("*/seed*/config.yaml") if re.fullmatch(r"seed\d+", cfg.parent.name)]
    return sorted(found, key=lambda p: (p.parent.name, int(p.name[4:])))


def find_run(path: Union[str, Path]) -> Tuple[Path, Path]:
    """``(run folder, checkpoint file)`` of a run folder or a checkpoint file inside ``RUN/checkpoints``.

    Raises:
        UsageError: no such run, no ``config.yaml`` beside it, or no checkpoint.
    """
    from hebbian.trainers.checkpoint import latest_checkpoint

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{str(path)!r} does not exist; give a run folder or a checkpoint file")
    if path.is_dir():
        run_dir = path.parent if path.name == "checkpoints" and (path.parent / "config.yaml").is_file() else path
        ckpt = latest_checkpoint(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else None
        ckpt = ckpt or latest_checkpoint(path)
        if ckpt is None:
            inside = runs_inside(path)
            if inside:
                shown = ", ".join(str(r) for r in inside[:4]) + (f" ... ({len(inside)} runs)" if len(inside) > 4 else "")
                raise UsageError(f"{str(path)!r} holds runs, not a run of its own (a 'hebbian compare' folder?); "
                                 f"give one of them: {shown}")
            raise UsageError(f"no checkpoint (checkpoints/*_<step>.pt) in {str(path)!r}")
    else:
        ckpt = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (run_dir / "config.yaml").is_file():
        raise UsageError(f"no config.yaml in {str(run_dir)!r}; is {str(path)!r} from a 'hebbian train' run?")
    return run_dir, ckpt


def load_run(path: Union[str, Path], overrides: Any = ()) -> Tuple[Experiment, Path, Path]:
    """Rebuild a saved run's :class:`Experiment` with its checkpointed model weights.

    Args:
        path: a run folder or checkpoint file.
        overrides: config overrides (e.g. ``[("data.root", ...)]``).

    Returns:
        ``(experiment, run folder, checkpoint file)``.
    """
    from hebbian.config import resolve_config
    from hebbian.trainers.checkpoint import InvalidCheckpointError, NonFiniteCheckpointError, resume_from

    run_dir, ckpt = find_run(path)
    exp = Experiment(resolve_config(run_dir / "config.yaml", overrides))
    try:
        resume_from(ckpt, {"model": exp.model}, map_location=exp.device)
    except (InvalidCheckpointError, NonFiniteCheckpointError) as err:
        raise UsageError(" ".join(str(err).split())) from None
    except Exception as err:  # a foreign or damaged file: say which, without a traceback
        raise UsageError(f"cannot load the model from {str(ckpt)!r}: {' '.join(str(err).split())}") from None
    return exp, run_dir, ckpt
