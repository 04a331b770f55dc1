"""One path from raw evaluation data to every metric.

:meth:`icrl_bench.eval.runner.EvalResult.metrics` and the leaderboard's ``submit`` both call
:func:`score`, so a number printed after an evaluation is the number its leaderboard row shows.

Bandits are scored from the arms pulled, not from the sampled rewards: the regret and the
*expected* return of a trial (the sum of the pulled arms' means) are computed from the recorded
actions and the registry's test tasks. Nothing about them is taken on trust, and the noise of the
reward draws does not enter the score.
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np

from icrl_bench.eval import metrics
from icrl_bench.eval.protocols import setting
from icrl_bench.references import missing_expert
from icrl_bench.registry import family, reference_returns, tasks


def success_source(env_id: str) -> str | None:
    """How a family defines an episode's success (:attr:`FamilySpec.success`):
    ``"termination"`` (DarkRoomHard, Key-to-Door), ``"info"`` (Meta-World: ``info["success"]``
    at any step) or None."""
    return family(env_id).success


def _references(env_id: str, split: str = "test") -> dict[str, np.ndarray]:
    """A split's random and oracle references (the test split's unless a diagnostic asks for
    the train split's), or a clear error where the oracle (a locomotion family's SAC expert) is
    not trained yet."""
    ref = reference_returns(env_id, split)
    if "oracle" not in ref:
        raise missing_expert(family(env_id).name)
    return ref


@overload
def with_runs_axis(arr: np.ndarray) -> np.ndarray: ...
@overload
def with_runs_axis(arr: None) -> None: ...
@overload
def with_runs_axis(arr: np.ndarray | None) -> np.ndarray | None: ...
def with_runs_axis(arr: np.ndarray | None) -> np.ndarray | None:
    """``[seeds, tasks, ...]`` (one run) as ``[1, seeds, tasks, ...]``; 4-dim arrays as they are."""
    if arr is None:
        return None
    arr = np.asarray(arr)
    return arr[None] if arr.ndim == 3 else arr


def is_bandit(env_id: str) -> bool:
    """Whether a family is scored by regret (the bandits)."""
    return family(env_id).is_bandit


def arm_means(env_id: str, split: str = "test") -> np.ndarray:
    """Mean reward of every arm of every task of a split (test by default), ``[tasks, arms]``."""
    spec = family(env_id)
    chosen = getattr(tasks(spec.name), split)
    return np.asarray(spec.core().mean_rewards(chosen))  # type: ignore[attr-defined]


def reward_std_bound(env_id: str) -> float:
    """An upper bound on the standard deviation of one bandit reward around its arm's mean."""
    core = family(env_id).core()
    return float(getattr(core, "noise_std", 0.5))  # Bernoulli: sqrt(p(1-p)) <= 0.5


def bandit_scores(
    env_id: str, actions: np.ndarray, split: str = "test"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-step regret and expected trial return of the pulled arms.

    Args:
        actions: ``[..., tasks, horizon]`` arms (``[seeds, tasks, horizon]`` or
            ``[runs, seeds, tasks, horizon]``).
        split: the tasks' split (test, unless a diagnostic scores the train split).

    Returns:
        Regret shaped as ``actions``, and the expected trial return ``[..., tasks, 1]``.

    Raises:
        ValueError: an arm index is out of range or the shape does not match the test split.
    """
    means = arm_means(env_id, split)
    actions = np.asarray(actions)
    if actions.ndim < 3 or actions.shape[-2] != means.shape[0]:
        raise ValueError(f"expected [seeds, {means.shape[0]}, horizon] arms")
    if actions.size and (actions.min() < 0 or actions.max() >= means.shape[1]):
        raise ValueError(f"arms must lie in [0, {means.shape[1]})")
    rows = np.arange(means.shape[0])[:, None]
    pulled = means[rows, actions]
    regret = means.max(axis=1)[:, None] - pulled
    return regret, pulled.sum(axis=-1, keepdims=True)


def score(
    env_id: str,
    returns: np.ndarray,
    actions: np.ndarray | None = None,
    success: np.ndarray | None = None,
    seeds_are_runs: bool = False,
    split: str = "test",
) -> dict[str, Any]:
    """Every metric of one result (see :func:`icrl_bench.eval.metrics.summarize`).

    Args:
        env_id: the family.
        returns: ``[runs, seeds, tasks, episodes]`` raw returns, or ``[seeds, tasks,
            episodes]`` for one run (ignored for bandits, which are scored from ``actions``).
        actions: bandits: the pulled arms, ``[..., tasks, horizon]`` with the same leading axes.
        success: 0/1 shaped as ``returns``, where the family defines success.
        seeds_are_runs: the evaluation seeds are the runs (a reference agent, which is not
            trained); otherwise they are averaged within each training run.
        split: the tasks' split: ``"test"``, or ``"train"`` for a diagnostic (normalised with
            the train tasks' references).
    """
    ref = _references(env_id, split)
    returns = with_runs_axis(returns)
    actions, success = with_runs_axis(actions), with_runs_axis(success)
    regret = None
    if is_bandit(env_id):
        if actions is None:
            raise ValueError(f"{family(env_id).name} is scored from the pulled arms (actions)")
        regret, returns = bandit_scores(env_id, actions, split)
    return metrics.summarize(
        returns, ref["random"], ref["oracle"], regret, success, seeds_are_runs=seeds_are_runs
    )


def headline_scores(
    env_id: str,
    protocol: str,
    returns: np.ndarray,
    actions: np.ndarray | None = None,
    seeds_are_runs: bool = False,
) -> np.ndarray:
    """The per-run headline score ``[runs, tasks]`` of a track, oriented so that higher is
    better: the normalised final score, or minus the cumulative regret for bandits.

    Args:
        returns: ``[runs, seeds, tasks, episodes]`` (or ``[seeds, tasks, episodes]``: one run).
        actions: bandits' arms, with the same leading axes.
        seeds_are_runs: see :func:`score`.
    """
    headline = setting(env_id, protocol).headline
    returns, actions = with_runs_axis(returns), with_runs_axis(actions)
    if headline == "regret":
        if actions is None:
            raise ValueError(f"{family(env_id).name} is scored from the pulled arms (actions)")
        regret, _ = bandit_scores(env_id, actions)
        return metrics.per_run(-metrics.cumulative_regret(regret), seeds_are_runs)
    ref = _references(env_id)
    norm = metrics.normalized(returns, ref["random"], ref["oracle"])
    return metrics.per_run(metrics.final_score(norm), seeds_are_runs)


def normalized_scores(
    env_id: str,
    returns: np.ndarray,
    actions: np.ndarray | None = None,
    seeds_are_runs: bool = False,
) -> np.ndarray:
    """The per-run normalised final score ``[runs, tasks]`` of any family (bandits: of the
    expected trial return of the pulled arms), the scale performance profiles share across
    tracks."""
    ref = _references(env_id)
    returns, actions = with_runs_axis(returns), with_runs_axis(actions)
    if is_bandit(env_id):
        if actions is None:
            raise ValueError(f"{family(env_id).name} is scored from the pulled arms (actions)")
        _, returns = bandit_scores(env_id, actions)
    norm = metrics.normalized(returns, ref["random"], ref["oracle"])
    return metrics.per_run(metrics.final_score(norm), seeds_are_runs)
