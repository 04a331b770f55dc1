"""Importing the package stays light: gym.make users do not pay for rliable or torch."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, icrl_bench; "
        "heavy = [m for m in ('rliable', 'torch', 'matplotlib', 'pandas') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
