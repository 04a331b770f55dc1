"""Running the CLI the way a hostile user would: in a subprocess, with a deadline, measuring
its peak memory, so that a test can assert a one-line error, a non-zero exit, no traceback, no
hang and no runaway memory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: a refused input must end within this many seconds
DEADLINE_S = 10.0
#: and the process must stay under this peak resident memory (the CLI itself takes ~150 MB)
MAX_RSS_MB = 600.0

# The peak resident memory of this process image: Linux's VmHWM, which starts afresh at exec
# (ru_maxrss does not: it carries the forking parent's peak, here pytest's, across the exec).
_WRAPPER = """
import resource, sys
from icrl_bench.cli import main
def peak_kb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    rc = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as f:
        f.write(str(peak_kb()))
sys.exit(rc)
"""


@dataclass
class Outcome:
    """What one CLI run did."""

    returncode: int
    stderr: str
    seconds: float
    rss_mb: float

    def assert_refused(self, *needles: str) -> None:
        """One line on stderr naming every needle, exit 2, no traceback, fast, small."""
        err = self.stderr.strip()
        assert self.returncode == 2, (self.returncode, err)
        assert "Traceback" not in err and err.count("\n") == 0, err
        assert err.startswith("icrl-bench: error:"), err
        for needle in needles:
            assert needle in err, (needle, err)
        assert self.seconds < DEADLINE_S, self.seconds
        assert self.rss_mb < MAX_RSS_MB, self.rss_mb


def run_cli(*args: str, env: dict[str, str] | None = None) -> Outcome:
    """Run ``icrl-bench args`` in a subprocess (killed after twice the deadline)."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _WRAPPER, str(rss_file), *args],
            capture_output=True,
            text=True,
            timeout=2 * DEADLINE_S,
            env={**os.environ, **(env or {})},
        )
        seconds = time.perf_counter() - start
        rss_kb = float(rss_file.read_text()) if rss_file.exists() else float("inf")
    return Outcome(proc.returncode, proc.stderr, seconds, rss_kb / 1024)
