"""The record of a run's processes (its segments: the first one and each resume), carried in its checkpoints."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional



class RunHistory:
    """The resumes of a run and its training time so far, as a checkpointable object (``to_save["run"]``): each
    resumed run appends a record, and its checkpoints carry the whole list on, so ``metrics.json`` can report every
    resume (``resumes``) and the training time of all processes together (``total_train_seconds``).

    ``train_seconds`` is the training time of the earlier processes up to the checkpoint this one resumed from
    (``None`` when that checkpoint predates this record); :meth:`begin` starts this process's clock.
    """

    def __init__(self) -> None:
        self.resumes: List[Dict[str, Any]] = []
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
        return {"resumes": [dict(r) for r in self.resumes], "train_seconds": self.elapsed()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.resumes = [dict(r) for r in state_dict.get("resumes", [])]
        seconds = state_dict.get("train_seconds")
        self.train_seconds = float(seconds) if isinstance(seconds, (int, float)) else None
