"""The record of a run's processes (its segments: the first one and each resume), carried in its checkpoints."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List, Mapping, Optional


class RunHistory:
    """A run's identity, its segments and its training time so far, as a checkpointable object (``to_save["run"]``).

    Its checkpoints carry the whole record on, so that

    * a checkpoint says which run it belongs to (``run_id``) and with which config it was trained (``config``: the
      text of ``config.yaml`` as hebbian wrote it): a checkpoint of another run, or a ``config.yaml`` edited since,
      is refused on resume (:func:`hebbian.runs.resume.check_identity`);
    * ``metrics.json`` reports every resume (``resumes``), every segment's process count (``segments``: the first
      process(es) and each resume, with ``processes`` and the epoch it started from) and the training time of all
      processes together (``total_train_seconds``).

    ``train_seconds`` is the training time of the earlier processes up to the checkpoint this one resumed from
    (``None`` when that checkpoint predates this record); :meth:`begin` starts this process's clock.
    """

    def __init__(self, run_id: Optional[str] = None, config: Optional[str] = None) -> None:
        self.run_id: Optional[str] = run_id or uuid.uuid4().hex
        self.config: Optional[str] = config
        self.resumes: List[Dict[str, Any]] = []
        self.segments: List[Dict[str, Any]] = []
        self.train_seconds: Optional[float] = 0.0
        self._since: Optional[float] = None

    def begin(self, _: Any = None) -> None:
        """Start this process's training clock (once; an Ignite ``STARTED`` handler)."""
        if self._since is None:
            self._since = time.perf_counter()

    def elapsed(self) -> Optional[float]:
        """Training seconds of every process so far (``None`` if an earlier process's time is unknown)."""
        if self.train_seconds is None:
            return None
        return self.train_seconds + (time.perf_counter() - self._since if self._since is not None else 0.0)

    def state_dict(self) -> Dict[str, Any]:
        return {"resumes": [dict(r) for r in self.resumes], "segments": [dict(s) for s in self.segments],
                "train_seconds": self.elapsed(), "run_id": self.run_id, "config": self.config}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a checkpoint's record; one from before identities were recorded leaves ``run_id`` and ``config``
        ``None`` and its one segment unknown."""
        self.resumes = [dict(r) for r in state_dict.get("resumes", [])]
        self.segments = [dict(s) for s in state_dict.get("segments", [])]
        seconds = state_dict.get("train_seconds")
        self.train_seconds = float(seconds) if isinstance(seconds, (int, float)) else None
        self.run_id = state_dict.get("run_id") if isinstance(state_dict.get("run_id"), str) else None
        self.config = state_dict.get("config") if isinstance(state_dict.get("config"), str) else None
