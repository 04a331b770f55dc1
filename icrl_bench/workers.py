"""Worker processes that die with the process that started them.

A pool worker (data generation, a suite's jobs) can run for minutes to hours. If the process
that started it is killed, even by SIGKILL, which runs no cleanup, the worker must not finish its
work as an orphan: a resumed run would do that work a second time beside it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time


def die_with_parent(parent: int) -> None:
    """Make this (pool worker) process exit when ``parent`` dies, even by SIGKILL, which runs
    no cleanup in the parent: on Linux the kernel sends SIGKILL (``PR_SET_PDEATHSIG``); on every
    platform a daemon thread also exits the process once its parent is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread below
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
