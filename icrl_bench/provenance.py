"""Provenance shared by dataset manifests and results files: the code's git sha and the
versions of the packages a run depends on (read from metadata; nothing heavy is imported)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

#: the package version (pyproject.toml's); the facade re-exports it as ``icrl_bench.__version__``
__version__ = "0.1.0"


def git_sha() -> str | None:
    """The commit of the checkout icrl-bench runs from, or ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def package_versions() -> dict[str, str | None]:
    """Versions of python, torch, gymnasium, numpy and icrl-bench (``None`` if absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "gymnasium", "numpy", "icrl-bench"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
