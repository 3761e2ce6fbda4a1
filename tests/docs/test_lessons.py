"""Every lesson of the documentation (examples/lessons/) runs as a plain script, draws its figures and shows what
its prose says it shows. Each runs in a fresh process on one thread, from examples/lessons/ as sphinx-gallery runs
it; lesson 9 (two comparisons, 20-40 s as a script) is marked slow (`pytest -m slow tests/docs`); the CI's site build
executes all of them (README, Documentation)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

LESSONS = Path(__file__).resolve().parents[2] / "examples" / "lessons"
RUNNER = ("import runpy, sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
          "runpy.run_path(sys.argv[1], run_name='__main__'); print(f'FIGURES {len(plt.get_fignums())}')")


def run_lesson(name: str, cwd: Path = LESSONS, env: Dict[str, str] = {}) -> str:
    """Run a lesson as sphinx-gallery does (its folder as the working directory); its stdout, ending in FIGURES n."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(LESSONS.parents[1]), os.environ.get("PYTHONPATH")])),
                   **env}
    done = subprocess.run([sys.executable, "-c", RUNNER, str(LESSONS / name)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def figures(out: str) -> int:
    return int(re.search(r"FIGURES (\d+)", out).group(1))


def numbers(pattern: str, out: str) -> List[float]:
    match = re.search(pattern, out)
    assert match, (pattern, out[-2000:])
    return [float(g) for g in match.groups()]


def test_every_lesson_is_listed_here():
    tested = {n[len("test_"):len("test_lesson_00")] for n in dir(sys.modules[__name__]) if n.startswith("test_lesson_")}
    lessons = {p.name[:len("lesson_00")] for p in LESSONS.glob("lesson_*.py")}
    assert lessons == tested and len(lessons) == 10, (lessons, tested)


def test_lesson_01_hebb_grows_oja_stays_at_one():
    out = run_lesson("lesson_01_hebb_oja.py")
    hebb_min, _, oja_min, oja_max = numbers(r"Hebb's norms ([\d.]+) to ([\d.]+), Oja's ([\d.]+) to ([\d.]+)", out)
    assert hebb_min > 100 and 0.98 < oja_min <= oja_max < 1.02
    assert min(numbers(r"Hebb ([\d.]+), Oja ([\d.]+)", out)) > 0.7  # both turn towards the first component
    assert figures(out) >= 1


def test_lesson_02_sanger_finds_the_leading_components_oja_the_first():
    out = run_lesson("lesson_02_oja_sanger_pca.py")
    sanger = [float(c) for c in re.search(r"Sanger unit i vs component i, \|cos\|: \[(.*)\]", out).group(1).split(",")]
    oja = [float(c) for c in re.search(r"Oja units vs the first component, \|cos\|: \[(.*)\]", out).group(1).split(",")]
    assert min(sanger[:5]) > 0.95 and min(oja) > 0.95
    assert figures(out) >= 2


def test_lesson_03_hard_competition_leaves_dead_units_soft_none():
    out = run_lesson("lesson_03_competition.py")
    (hard,) = numbers(r"instar \(hard WTA\): (\d+) of 20", out)
    (soft,) = numbers(r"competitive Oja \(soft\): (\d+) of 20", out)
    assert hard >= 1 and soft == 0
    assert figures(out) >= 2


def test_lesson_04_anti_hebbian_term_spreads_the_units():
    out = run_lesson("lesson_04_krotov_over_training.py")
    anti, anti_nearest = numbers(r"delta 0.4: (\d+) pairs .*? nearest other unit ([\d.]+)", out)
    plain, plain_nearest = numbers(r"delta 0: (\d+) pairs .*? nearest other unit ([\d.]+)", out)
    assert anti < plain and anti_nearest < plain_nearest
    assert figures(out) >= 3


def test_lesson_05_softhebb_norms_converge_and_temperature_matters():
    out = run_lesson("lesson_05_softhebb.py")
    first, _, last = numbers(r"after 1, 5 and 10 epochs: \[([\d.]+), ([\d.]+), ([\d.]+)\]", out)
    assert first > 5 and abs(last - 1) < 0.2
    probe, control = numbers(r"t_inv = 1.0: probe ([\d.]+)% vs control ([\d.]+)%", out)
    assert probe > control + 3
    assert figures(out) >= 2


def test_lesson_06_bcm_sharpens_foldiak_decorrelates():
    out = run_lesson("lesson_06_bcm_foldiak.py")
    before, after = numbers(r"median selectivity ([\d.]+) -> ([\d.]+)", out)
    assert after > before
    _, rate, corr_before, corr_after = numbers(
        r"mean firing rate ([\d.]+) -> ([\d.]+) .*?between units ([\d.]+) -> ([\d.]+)", out)
    assert abs(rate - 0.125) < 0.1 and corr_after < corr_before
    assert "all inhibitory: True" in out and figures(out) >= 2


def test_lesson_07_three_factor_rules_learn_the_task():
    out = run_lesson("lesson_07_three_factors.py")
    for method in ("reward_modulated", "random_feedback", "ghl", "backprop"):
        start, end = numbers(rf"{method}: network test accuracy ([\d.]+)% untrained -> ([\d.]+)%", out)
        assert end > 80 > start, method
    assert figures(out) >= 1


@pytest.mark.data
def test_lesson_08_conv_filters_on_fashion_mnist():
    out = run_lesson("lesson_08_conv_fashion.py")
    if "Skipped:" in out:
        pytest.skip("Fashion-MNIST is not in ../shared/datasets")
    assert "5000 training images (1, 28, 28)" in out and figures(out) >= 2


def test_lesson_08_without_the_data_says_so_and_skips(tmp_path: Path):
    out = run_lesson("lesson_08_conv_fashion.py", cwd=tmp_path, env={"HEBBIAN_DATA_ROOT": str(tmp_path / "none")})
    assert "Skipped: Fashion-MNIST is not here" in out and figures(out) == 0


@pytest.mark.slow
def test_lesson_09_naive_readout_ranks_scale_probe_does_not():
    out = run_lesson("lesson_09_comparing_honestly.py")
    rows = re.findall(r"weights x ([\d.]+): naive readout ([\d.]+)%, logistic probe ([\d.]+)%", out)
    naive, probe = {float(r[1]) for r in rows}, {float(r[2]) for r in rows}
    assert len(rows) == 3 and len(probe) == 1 and max(naive) - min(naive) > 10
    krotov = re.findall(r"krotov seed \d: .*\(gain ([+-][\d.]+) points\)", out)
    oja = re.findall(r"oja seed \d: .*\(gain ([+-][\d.]+) points\)", out)
    assert len(krotov) == len(oja) == 3 and all(float(g) > 0 for g in krotov) and all(float(g) < 0 for g in oja)
    assert figures(out) >= 2


def test_lesson_10_own_rule_runs_from_the_command_line():
    out = run_lesson("lesson_10_your_own_rule.py")
    assert "registered: True | update shape (8, 1, 3, 3)" in out
    assert re.search(r"\[1/2\] my_bcm\s+seed 0\s+probe", out) and "filters of linear1" in out
    assert figures(out) >= 2
