"""pytorch-hebbian's ``TqdmLogger``: metrics printed through an Ignite ``ProgressBar`` (``pbar.log_message``)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from ignite.engine import Engine
from ignite.handlers import ProgressBar
from ignite.handlers.base_logger import BaseLogger, BaseOutputHandler

__all__ = ["OutputHandler", "TqdmLogger"]


class OutputHandler(BaseOutputHandler):
    """Prints ``"<Tag> epoch <step>: name=value, ..."`` with the engine's metrics (and transformed output).

    Args:
        tag: the line's title, e.g. ``"validation"``.
        metric_names: ``"all"`` or a list of metric names.
        output_transform: ``engine.state.output -> number or {name: number}``.
        global_step_transform: ``(engine, event_name) -> int`` (e.g. ``global_step_from_engine(trainer)``).
    """

    def __init__(self, tag: str, metric_names: Union[str, List[str], None] = "all",
                 output_transform: Optional[Callable] = None, global_step_transform: Optional[Callable] = None
                 ) -> None:
        super().__init__(tag, metric_names, output_transform, global_step_transform)

    def values(self, engine: Engine) -> Dict[str, Any]:
        """The metrics (and transformed output) to print, by name."""
        metrics = engine.state.metrics
        if self.metric_names == "all":
            values = dict(metrics)
        else:
            values = {}
            for name in self.metric_names or []:
                if name in metrics:
                    values[name] = metrics[name]
                else:
                    warnings.warn(f"Provided metric name '{name}' is missing in engine's state metrics: "
                                  f"{list(metrics)}")
        if self.output_transform is not None:
            output = self.output_transform(engine.state.output)
            values.update(output if isinstance(output, dict) else {"output": output})
        return values

    def __call__(self, engine: Engine, logger: Any, event_name: Any) -> None:
        if not isinstance(logger, TqdmLogger):
            raise RuntimeError("Handler 'OutputHandler' works only with TqdmLogger")
        step = self.global_step_transform(engine, event_name)
        if not isinstance(step, int):
            raise TypeError(f"global_step must be int, got {type(step)}. Please check the output of "
                            "global_step_transform.")
        parts = []
        for name, value in self.values(engine).items():
            if isinstance(value, torch.Tensor) and value.dim() == 0:
                value = value.item()
            if isinstance(value, numbers.Number):
                parts.append(f"{name}={value:.4e}" if abs(value) > 1e4 else f"{name}={value:.4f}")
            elif isinstance(value, torch.Tensor) and value.dim() == 1:
                parts.extend(f"{name}{i}={v.item()}" for i, v in enumerate(value))
            else:
                warnings.warn(f"TqdmLogger output_handler can not log metrics value type {type(value)}")
        logger.pbar.log_message(f"{self.tag.capitalize()} epoch {step}: " + ", ".join(parts))


class TqdmLogger(BaseLogger):
    """Logs through a progress bar: ``TqdmLogger(pbar=ProgressBar(...))``, then ``attach_output_handler(...)``."""

    def __init__(self, pbar: ProgressBar) -> None:
        if not callable(getattr(pbar, "log_message", None)):
            raise TypeError(f"pbar must be an ignite ProgressBar, got {type(pbar).__name__}")
        self.pbar: Optional[ProgressBar] = pbar

    def close(self) -> None:
        if self.pbar is not None:
            self.pbar.close()
        self.pbar = None

    def _create_output_handler(self, *args: Any, **kwargs: Any) -> OutputHandler:
        return OutputHandler(*args, **kwargs)

    def _create_opt_params_handler(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("TqdmLogger logs metrics only, not optimizer parameters")
