"""One path from raw evaluation data to every metric.

:meth:`icrl_bench.eval.runner.EvalResult.metrics` and the leaderboard's ``submit`` both call
:func:`score`, so a number printed after an evaluation is the number its leaderboard row shows.

Bandits are scored from the arms pulled, not from the sampled rewards: the regret and the
*expected* return of a trial (the sum of the pulled arms' means) are computed from the recorded
actions and the registry's test tasks. Nothing about them is taken on trust, and the noise of the
reward draws does not enter the score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from icrl_bench.registry import family, reference_returns, tasks

#: families whose episodes succeed by terminating (reaching the goal, opening the door)
SUCCESS_ON_TERMINATION = ("DarkRoomHard-v0", "KeyToDoor-v0")


def success_source(env_id: str) -> str | None:
    """How a family defines an episode's success: ``"termination"`` (DarkRoomHard,
    Key-to-Door), ``"info"`` (Meta-World: ``info["success"]`` at any step) or None."""
    spec = family(env_id)
    if spec.name in SUCCESS_ON_TERMINATION:
        return "termination"
    return "info" if spec.kind == "metaworld" else None


def _references(env_id: str) -> dict[str, np.ndarray]:
    """The test split's random and oracle references, or a clear error where the oracle (a
    locomotion family's SAC expert) is not trained yet."""
    ref = reference_returns(env_id)
    if "oracle" not in ref:
        from icrl_bench.envs.references import missing_expert

        raise missing_expert(family(env_id).name)
    return ref


def is_bandit(env_id: str) -> bool:
    """Whether a family is scored by regret (the bandits)."""
    return family(env_id).headline == "regret"


def arm_means(env_id: str) -> np.ndarray:
    """Mean reward of every arm of every test task, ``[tasks, arms]``."""
    spec = family(env_id)
    return np.asarray(spec.core().mean_rewards(tasks(spec.name).test))  # type: ignore[attr-defined]


def reward_std_bound(env_id: str) -> float:
    """An upper bound on the standard deviation of one bandit reward around its arm's mean."""
    core = family(env_id).core()
    return float(getattr(core, "noise_std", 0.5))  # Bernoulli: sqrt(p(1-p)) <= 0.5


def bandit_scores(env_id: str, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step regret ``[seeds, tasks, horizon]`` and expected trial return ``[seeds, tasks, 1]``.

    Raises:
        ValueError: an arm index is out of range or the shape does not match the test split.
    """
    means = arm_means(env_id)
    actions = np.asarray(actions)
    if actions.ndim != 3 or actions.shape[1] != means.shape[0]:
        raise ValueError(f"expected [seeds, {means.shape[0]}, horizon] arms")
    if actions.size and (actions.min() < 0 or actions.max() >= means.shape[1]):
        raise ValueError(f"arms must lie in [0, {means.shape[1]})")
    rows = np.arange(means.shape[0])[None, :, None]
    pulled = means[rows, actions]
    regret = means.max(axis=1)[None, :, None] - pulled
    return regret, pulled.sum(axis=2, keepdims=True)


def score(
    env_id: str,
    returns: np.ndarray,
    actions: np.ndarray | None = None,
    success: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of one evaluation (see :func:`icrl_bench.eval.metrics.summarize`).

    Args:
        env_id: the family.
        returns: ``[seeds, tasks, episodes]`` raw returns (ignored for bandits, which are scored
            from ``actions``).
        actions: bandits: ``[seeds, tasks, horizon]`` pulled arms.
        success: ``[seeds, tasks, episodes]`` 0/1 where the family defines success.
    """
    from icrl_bench.eval import metrics  # rliable is heavy: imported when scores are asked

    ref = _references(env_id)
    regret = None
    if is_bandit(env_id):
        if actions is None:
            raise ValueError(f"{family(env_id).name} is scored from the pulled arms (actions)")
        regret, returns = bandit_scores(env_id, actions)
    return metrics.summarize(returns, ref["random"], ref["oracle"], regret, success)


def headline_scores(
    env_id: str, protocol: str, returns: np.ndarray, actions: np.ndarray | None = None
) -> np.ndarray:
    """The per-run headline score ``[seeds, tasks]`` of a track, oriented so that higher is
    better: the normalised final score, or minus the cumulative regret for bandits."""
    from icrl_bench.eval import metrics
    from icrl_bench.eval.protocols import setting

    headline = setting(env_id, protocol).headline
    if headline == "regret":
        if actions is None:
            raise ValueError(f"{family(env_id).name} is scored from the pulled arms (actions)")
        regret, _ = bandit_scores(env_id, actions)
        return -metrics.cumulative_regret(regret)
    ref = _references(env_id)
    return metrics.final_score(metrics.normalized(returns, ref["random"], ref["oracle"]))
