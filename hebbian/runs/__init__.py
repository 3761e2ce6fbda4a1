"""A run folder: one experiment trained, checkpointed, logged and evaluated in a folder of its own.

:func:`run` builds an :class:`~hebbian.experiment.Experiment` from a resolved config and leaves ``config.yaml``,
``metrics.json``, ``checkpoints/``, ``tb/`` and ``filters.png`` in the run folder; :func:`load_run` rebuilds a saved
run for evaluation or plotting. The ``hebbian`` command's ``train``, ``compare``, ``evaluate`` and ``visualize`` are
thin layers over this package, one concern a module:

* :mod:`~hebbian.runs.folder`: the run folder, its lock and marker, who may write there and what a run leaves in it;
* :mod:`~hebbian.runs.training`: one run from start to end (:func:`run`);
* :mod:`~hebbian.runs.attach`: progress bar, TensorBoard logs and checkpoints attached to the engines;
* :mod:`~hebbian.runs.history`: the run's segments (its first process and each resume), carried in its checkpoints;
* :mod:`~hebbian.runs.resume`: what may be resumed, and the checks that a checkpoint and config are the run's own;
* :mod:`~hebbian.runs.launch`: data-parallel processes (``torchrun`` or :func:`run_parallel`);
* :mod:`~hebbian.runs.summary` and :mod:`~hebbian.runs.load`: what a finished run reports, and loading it back.

Resuming (``resume=RUN`` into the same folder) is exact: the checkpoints hold the model, optimizer, scheduler, rule
states, trainer position, data order and RNG states, so a run killed at any moment (``kill -9`` included) and resumed
ends with the weights of an uninterrupted run, bit for bit. The config must be the run's own, except for the keys the
caller explicitly allows to change (:data:`CHANGEABLE_ON_RESUME`: ``train.epochs``, which stretches the
learning-rate schedule over the new total) and those that do not change what is trained (:data:`FREE_ON_RESUME`:
logging, probe, device ...); each resume and its changes are recorded in ``metrics.json`` (``resumes``).

Data-parallel runs (``torchrun``, or :func:`run_parallel`, which spawns the processes through
``ignite.distributed.Parallel``) train on all processes, each on its share of every global batch; only rank 0 locks
the folder and writes to it.
"""

from hebbian.files import write_atomic
from hebbian.runs.attach import attach_checkpoints, attach_progress, attach_tensorboard
from hebbian.runs.folder import LOCK_FILE, RUN_ENTRIES, RunFolder, default_run_dir, new_run_dir, prepare_run_dir
from hebbian.runs.history import RunHistory
from hebbian.runs.launch import launched_by_torchrun, on_rank_zero, run_parallel
from hebbian.runs.load import find_run, load_run
from hebbian.runs.resume import (
    CHANGEABLE_ON_RESUME,
    FREE_ON_RESUME,
    IGNORED_ON_RESUME,
    check_resume_config,
    check_resume_point,
    config_changes,
    find_resume_source,
    resume_training,
)
from hebbian.runs.summary import hparams_of, summary_line
from hebbian.runs.training import learning_metrics, run
from hebbian.visualizers.hparams import HPARAM_METRICS, final_metrics

__all__ = [
    "CHANGEABLE_ON_RESUME", "FREE_ON_RESUME", "HPARAM_METRICS", "IGNORED_ON_RESUME", "LOCK_FILE", "RUN_ENTRIES",
    "RunFolder", "RunHistory", "attach_checkpoints", "attach_progress", "attach_tensorboard", "check_resume_config",
    "check_resume_point", "config_changes", "default_run_dir", "final_metrics", "find_resume_source", "find_run",
    "hparams_of", "launched_by_torchrun", "learning_metrics", "load_run", "new_run_dir", "on_rank_zero",
    "prepare_run_dir", "resume_training", "run", "run_parallel", "summary_line", "write_atomic",
]
