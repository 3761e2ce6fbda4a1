"""Rows of the benchmark table, the run configuration, and the table's text form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

from benchmarks.timing import Timings, format_seconds


@dataclass
class Config:
    """What every benchmark receives: the device, whether to run the tiny smoke sizes, and how many repetitions."""

    device: torch.device
    quick: bool = False
    reps: int = 5
    data_root: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"


@dataclass
class Row:
    """One line of the table: ``ours`` against ``baseline`` (both medians), their ratio and the target.

    ``kind="time"`` rows compare seconds, ``kind="memory"`` rows bytes, ``kind="ratio"`` rows two ratios (e.g. a
    time ratio at two depths); ``kind="absolute"`` rows have no baseline and compare ``ours`` (seconds) with
    ``target`` directly.
    """

    name: str
    ours: float
    baseline: Optional[float] = None
    baseline_name: str = ""
    target: Optional[float] = None
    kind: str = "time"
    note: str = ""
    spread: Optional[float] = None

    @property
    def ratio(self) -> Optional[float]:
        if self.baseline is None:
            return None
        return self.ours / self.baseline if self.baseline > 0 else float("inf")

    @property
    def met(self) -> Optional[bool]:
        if self.target is None:
            return None
        value = self.ours if self.kind == "absolute" else self.ratio
        return None if value is None else value <= self.target

    def cells(self) -> List[str]:
        fmt = {"memory": _format_bytes, "ratio": _format_ratio}.get(self.kind, format_seconds)
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        if self.target is None:
            target = "-"
        elif self.kind == "absolute":
            target = f"<= {format_seconds(self.target)}"
        else:
            target = f"<= {self.target:.2f}x"
        met = {None: "-", True: "yes", False: "NO"}[self.met]
        base = "-" if self.baseline is None else f"{fmt(self.baseline)} ({self.baseline_name})"
        spread = "-" if self.spread is None else f"{100 * self.spread:.0f}%"
        return [self.name, fmt(self.ours), base, ratio, target, met, spread, self.note]


def time_row(
    name: str, timings: Timings, ours: str, baseline: Optional[str], target: Optional[float], note: str = ""
) -> Row:
    """A ``time`` row from interleaved timings (medians), or an ``absolute`` one when ``baseline`` is None."""
    if baseline is None:
        return Row(name, timings.median(ours), target=target, kind="absolute", note=note, spread=timings.spread(ours))
    return Row(
        name, timings.median(ours), timings.median(baseline), baseline, target, note=note,
        spread=max(timings.spread(ours), timings.spread(baseline)),
    )


#: ``spread``: (max - min) / median over the repetitions of the noisier of the two variants.
HEADER = ["benchmark", "ours (median)", "baseline (median)", "ratio", "target", "met", "spread", "note"]


def format_table(rows: Sequence[Row], markdown: bool = False) -> str:
    """The rows as an aligned text table, or as a Markdown table."""
    lines = [HEADER] + [r.cells() for r in rows]
    if markdown:
        out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(HEADER)]
        out += ["| " + " | ".join(c.replace("|", "/") for c in cells) + " |" for cells in lines[1:]]
        return "\n".join(out)
    widths = [max(len(cells[i]) for cells in lines) for i in range(len(HEADER) - 1)]
    text = []
    for cells in lines:
        text.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[-1])
        if cells is lines[0]:
            text.append("-" * (sum(widths) + 2 * len(widths) + 4))
    return "\n".join(text)


def format_machine(info: Dict[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in info.items())


def _format_bytes(n: Optional[float]) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:.1f} MiB"


def _format_ratio(r: Optional[float]) -> str:
    return "-" if r is None else f"{r:.2f}x"
