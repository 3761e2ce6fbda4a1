"""``python tests/cli/killer.py MODE N -- hebbian arguments``: the ``hebbian`` command, SIGKILL-ed at a chosen point.

MODE ``update``: at the N-th layer update (mid-iteration: statistics computed, not all layers updated);
``step``: at the N-th optimizer step (any method, backprop included);
``save``: during the N-th checkpoint write (half the bytes written to the temporary file);
``metrics``: while writing ``metrics.json`` (training and evaluation done); ``hold``: not killed, but paused at the
first optimizer step until the file ``$HEBBIAN_TEST_RELEASE`` exists (at most N seconds), holding the run folder.
Used by tests/cli/test_resume.py to check that ``hebbian train --resume`` ends bit for bit where an uninterrupted run
does, however the run was interrupted.
"""

import os
import signal
import sys


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    mode, n = sys.argv[1], int(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1:]
    count = [0]
    if mode == "update":
        import hebbian.trainers.ghl as ghl
        import hebbian.trainers.hebbian_trainer as trainer

        original = trainer.apply_updates

        def apply_updates(engine, bindings, stats, guard, grads=None):
            count[0] += 1
            if count[0] == n:
                _kill()
            return original(engine, bindings, stats, guard, grads)

        trainer.apply_updates = ghl.apply_updates = apply_updates
    elif mode == "step":
        import torch

        from hebbian.optim import Local

        for cls in (Local, torch.optim.SGD, torch.optim.Adam):
            def step(self, *args, _original=cls.step, **kwargs):
                count[0] += 1
                if count[0] == n:
                    _kill()
                return _original(self, *args, **kwargs)

            cls.step = step
    elif mode == "hold":
        import time
        from pathlib import Path

        from hebbian.optim import Local

        release, original_step = Path(os.environ["HEBBIAN_TEST_RELEASE"]), Local.step

        def held_step(self, *args, **kwargs):
            deadline = time.monotonic() + n
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return original_step(self, *args, **kwargs)

        Local.step = held_step
    elif mode == "save":
        import torch

        original_save = torch.save

        def save(obj, f, *args, **kwargs):
            count[0] += 1
            if count[0] == n:
                f.write(b"PK\x03\x04 half a checkpoint")
                f.flush()
                _kill()
            return original_save(obj, f, *args, **kwargs)

        torch.save = save
    elif mode == "metrics":
        import hebbian.runs.training as runs

        original_write = runs.write_atomic

        def write_atomic(path, text):
            if str(path).endswith("metrics.json"):
                _kill()
            return original_write(path, text)

        runs.write_atomic = write_atomic
    from hebbian.cli import main as hebbian_main

    return hebbian_main(argv)


if __name__ == "__main__":
    sys.exit(main())
