"""Run a test's attack in a child process whose memory and CPU time are capped.

So a regression fails the test (MemoryError, the child dies, or it runs out of CPU time)
instead of exhausting the machine. The bound on time is on CPU seconds, the work the attack
does, not on the wall clock: beside other work the same attack takes several times as long
on the wall and about the same CPU time.

The children are forked from one process that has imported the attacks' modules (torch,
timm, the test module): a fresh interpreter per attack spent several CPU seconds on those
imports, many times what most attacks take.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Reads one request a line (JSON: target, cap in GiB, CPU seconds, wall seconds, stdout and
# stderr files, the arguments), forks, and answers the child's exit code (negative: the signal).
_ZYGOTE = """
import importlib, json, os, resource, signal, sys, time, traceback
while line := sys.stdin.readline():
    target, cap_gb, cpu_seconds, wall_seconds, out, err, *args = json.loads(line)
    module, _, name = target.partition(":")
    attack = getattr(importlib.import_module(module), name)  # imports here, once: the caps count from them
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd, path in ((1, out), (2, err)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
            cap = size + int(cap_gb * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            started = time.process_time()
            cpu = int(started + cpu_seconds) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))  # SIGXCPU, then SIGKILL: a runaway attack ends
            signal.alarm(int(wall_seconds))  # SIGALRM: one that hangs without using CPU ends too
            result = attack(*args)
            print(f"cpu seconds: {time.process_time() - started:.3f}", file=sys.stderr)
            print(result)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""

_zygote: subprocess.Popen[str] | None = None


def _started() -> subprocess.Popen[str]:
    global _zygote
    if _zygote is None or _zygote.poll() is not None:
        _zygote = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, cwd=REPO)
        atexit.register(_stop, _zygote)
    return _zygote


def _stop(zygote: subprocess.Popen[str]) -> None:
    if zygote.poll() is None:
        zygote.stdin.close()  # type: ignore[union-attr]
        zygote.wait(timeout=30)


def run_capped(target: str, *args: str, cap_gb: float = 2.0, cpu_seconds: float = 60.0,
               timeout: float = 1800.0) -> tuple[subprocess.CompletedProcess[str], float]:
    """Call ``module:function(*args)`` in a child whose address space may grow at most ``cap_gb`` GiB.

    The growth and the CPU time count from what the child holds once ``module`` is imported;
    the child prints the result.

    Args:
        target: ``tests.core.test_x:attack`` (the module is imported before the caps are set).
        *args: string arguments of the function.
        cap_gb: the allowed growth in GiB.
        cpu_seconds: CPU seconds (every thread of the child) the attack may use before the child
            is killed (RLIMIT_CPU; the test then fails on its exit code).
        timeout: wall seconds before the child is killed: only against a child that hangs without
            using CPU, generous because a loaded machine stretches the wall time.

    Returns:
        (the finished child: its exit code, stdout and stderr as text; CPU seconds the attack
        used, or infinity when the child did not say: it was killed or failed).
    """
    zygote = _started()
    with tempfile.TemporaryDirectory(prefix="memory-cap-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        zygote.stdin.write(json.dumps([target, cap_gb, cpu_seconds, timeout, str(out), str(err), *args]) + "\n")  # type: ignore[union-attr]
        zygote.stdin.flush()  # type: ignore[union-attr]
        answer = zygote.stdout.readline()  # type: ignore[union-attr]
        assert answer, f"the process that forks the attacks exited with {zygote.wait()}"
        done = subprocess.CompletedProcess([target, *args], int(answer), out.read_text(errors="replace"),
                                           err.read_text(errors="replace") if err.exists() else "")
    said = [line for line in done.stderr.splitlines() if line.startswith("cpu seconds: ")]
    return done, float(said[-1].split(": ")[1]) if said else float("inf")
