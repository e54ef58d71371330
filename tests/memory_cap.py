"""Run a test's attack in a child process whose memory is capped.

So a regression fails the test (MemoryError, or the child dies) instead of exhausting the machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import importlib, resource, sys
module, _, name = sys.argv[1].partition(":")
attack = getattr(importlib.import_module(module), name)  # imports first: the cap counts from here
size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
cap = size + int(float(sys.argv[2]) * (1 << 30))
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
print(attack(*sys.argv[3:]))
"""


def run_capped(target: str, *args: str, cap_gb: float = 2.0, timeout: float = 120.0) -> tuple[subprocess.CompletedProcess, float]:
    """Call ``module:function(*args)`` in a child whose address space may grow at most ``cap_gb`` GiB.

    The growth counts from what the child holds once ``module`` is imported; the child prints the
    result.

    Args:
        target: ``tests.core.test_x:attack`` (the module is imported before the cap is set).
        *args: string arguments of the function.
        cap_gb: the allowed growth in GiB.
        timeout: seconds before the child is killed (the test then fails).

    Returns:
        (the finished process, with stdout and stderr as text; seconds it took).
    """
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, target, str(cap_gb), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    return done, time.perf_counter() - started
