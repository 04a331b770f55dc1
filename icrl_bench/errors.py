"""Exceptions raised by icrl-bench.

Every error a user can provoke with bad input is an :class:`IcrlBenchError`. The CLI catches
these and prints their message as one line, so each message must name the problem on its own.
"""

from __future__ import annotations

import importlib
from typing import Any


class IcrlBenchError(Exception):
    """Base class for errors caused by bad input (ids, tasks, actions, files)."""


class UnknownIdError(IcrlBenchError, KeyError):
    """An env, dataset, protocol or method id that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class InvalidTaskError(IcrlBenchError, ValueError):
    """A task that does not belong to the family, or whose parameters are out of range."""


class InvalidActionError(IcrlBenchError, ValueError):
    """An action outside the action space."""


class MissingReferenceError(IcrlBenchError):
    """A family whose scoring reference (a locomotion family's SAC expert) is not trained yet:
    raw returns can be recorded, but not normalised."""


def optional_import(module: str, needed_for: str, install: str) -> Any:
    """Import an optional dependency (an extra), or raise a one-line :class:`IcrlBenchError`
    saying what needs it and how to install it.

    Args:
        module: the module to import, e.g. ``"stable_baselines3"``.
        needed_for: what needs it, e.g. ``"SAC datasets"``.
        install: the install command, e.g. ``"pip install 'icrl-bench[mujoco]'"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise IcrlBenchError(f"{needed_for} need {module}: {install}") from None
