"""Side-by-side timing: interleaved repetitions, medians, device synchronisation, peak memory.

Every comparison in this package is measured in one process, with the variants *interleaved* (A B C, B C A, C A B,
...), so that a slow moment of a shared machine hits all of them alike; the reported figure is the median.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall-clock (CPU) or CUDA-event (GPU) timing of one call, in seconds."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.device.type == "cuda":
            synchronize(self.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        start_t = time.perf_counter()
        fn()
        return time.perf_counter() - start_t


@dataclass
class Timings:
    """Seconds per repetition for each variant of one comparison."""

    runs: Dict[str, List[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.runs[name])

    def ratio(self, name: str, baseline: str) -> float:
        """Ratio of medians ``median(name) / median(baseline)``."""
        return self.median(name) / self.median(baseline)

    def spread(self, name: str) -> float:
        """Relative spread (max - min) / median of one variant, a noise indicator."""
        r = self.runs[name]
        return (max(r) - min(r)) / self.median(name)


def interleaved(
    variants: Mapping[str, Callable[[], Any]],
    device: torch.device,
    reps: int = 5,
    warmup: int = 1,
) -> Timings:
    """Time each variant ``reps`` times, interleaved in rotating order, after ``warmup`` untimed calls of each."""
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    names = list(variants)
    watch = Stopwatch(device)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    synchronize(device)
    out = Timings({name: [] for name in names})
    for r in range(reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            out.runs[name].append(watch(variants[name]))
    return out


# ---------------------------------------------------------------------------------------------- peak memory
def peak_rss_delta(code: str, setup: str, timeout: float = 300.0) -> int:
    """Peak extra resident memory (bytes) of ``code`` in a fresh Python process, after ``setup`` ran.

    Method: the child runs ``setup`` (imports, inputs, one warm-up call so that libraries and kernels are loaded),
    then resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``), reads ``VmHWM`` from
    ``/proc/self/status``, runs ``code`` and reads ``VmHWM`` again. The difference is the extra memory the code
    needed at its peak, including allocations PyTorch's profiler cannot see (oneDNN scratch, the C allocator).
    Linux only; raises ``RuntimeError`` elsewhere.
    """
    if not os.path.exists("/proc/self/clear_refs"):
        raise RuntimeError("peak_rss_delta needs Linux /proc (clear_refs, VmHWM)")
    script = f"""
import gc, sys
{setup}
gc.collect()
def _hwm():
    with open('/proc/self/status') as _status:
        for _line in _status:
            if _line.startswith('VmHWM:'):
                return int(_line.split()[1]) * 1024
with open('/proc/self/clear_refs', 'w') as _clear:
    _clear.write('5')
_before = _hwm()
{code}
print(_hwm() - _before)
"""
    env = dict(os.environ)
    # A fixed mmap threshold makes glibc return every block >= 64 KiB to the kernel when it is freed, so the warm-up
    # call's freed memory is not silently reused by the measured call (which would hide its peak).
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_repo_root(), env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"peak-memory child failed:\n{done.stderr[-2000:]}")
    return int(done.stdout.strip().splitlines()[-1])


def cuda_peak_delta(fn: Callable[[], Any], device: torch.device) -> int:
    """Peak extra CUDA memory (bytes) allocated by ``fn`` beyond what was allocated before it."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine_description(device: torch.device) -> Dict[str, str]:
    """CPU model and cores (lscpu), torch version, threads, and the GPU's name when timing on CUDA."""
    info = {"torch": torch.__version__, "threads": str(torch.get_num_threads()), "python": sys.version.split()[0]}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        info["cpu"] = fields.get("Model name", "?").strip()
        info["cores"] = fields.get("CPU(s)", "?").strip()
    except (OSError, subprocess.SubprocessError):
        info["cpu"], info["cores"] = "?", str(os.cpu_count())
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load"] = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        pass
    return info


def format_seconds(s: Optional[float]) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"
