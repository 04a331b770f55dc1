"""The protocol runner: every (seed, test task) pair as one batch through the vector env."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from icrl_bench import data
from icrl_bench.eval import protocols as _protocols
from icrl_bench.eval.agents import Agent
from icrl_bench.eval.protocols import Protocol, Setting, setting
from icrl_bench.eval.scoring import score, success_source
from icrl_bench.registry import family, tasks
from icrl_bench.values import check_seeds

#: the arrays a prompt carries (labels such as ``optimal_actions`` would leak the task)
PROMPT_KEYS = (
    "observations",
    "actions",
    "rewards",
    "next_observations",
    "terminations",
    "truncations",
    "episode_index",
)


@dataclass
class EvalResult:
    """Raw outcome of one evaluation.

    Attributes:
        env_id: the registered id.
        protocol: the protocol id.
        seeds: the evaluation seeds.
        returns: episode returns, float64 ``[seeds, tasks, episodes]``.
        regret: bandits only: expected per-step regret, ``[seeds, tasks, horizon]``.
        actions: bandits only: the arm pulled at every step, ``[seeds, tasks, horizon]`` (the
            results file stores these; the regret is recomputed from them and the task).
        success: families that define success: ``[seeds, tasks, episodes]`` of 0/1.
        prompt_dataset: the dataset id the prompts came from (prompted protocols).
        prompt_sha256: those datasets' content hashes.
        split: the tasks' split (``"test"``; ``"train"`` only for diagnostics).
    """

    env_id: str
    protocol: str
    seeds: list[int]
    returns: np.ndarray
    regret: np.ndarray | None = None
    actions: np.ndarray | None = None
    success: np.ndarray | None = None
    prompt_dataset: list[str] = field(default_factory=list)
    prompt_sha256: list[str] = field(default_factory=list)
    split: str = "test"

    def metrics(self, seeds_are_runs: bool = False) -> dict[str, Any]:
        """Every metric of this evaluation as one result, exactly as the leaderboard computes it
        (:func:`icrl_bench.eval.scoring.score`): ``normalized_final``, ``nauc``,
        ``final_return``, and ``regret`` or ``success_rate`` where defined, each a dict of
        ``mean``, ``iqm`` and their 95% CI bounds; plus ``curve`` and ``normalized_curve``.

        Args:
            seeds_are_runs: true for a reference agent (not trained: each evaluation seed is a
                run). Otherwise this is one training run, its seeds are averaged per task, and
                the intervals have zero width (one run shows no variation between runs).
        """
        return score(
            self.env_id, self.returns, self.actions, self.success, seeds_are_runs, self.split
        )


def _env_seeds(seed: int, n: int) -> list[int]:
    """Independent per-env seeds for an evaluation seed (no overlap between seeds)."""
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)]


def _prompts(env_id: str, st: Setting, seed: int) -> tuple[list[dict[str, np.ndarray]], str, str]:
    assert st.prompt_variant is not None
    overrides = {"episodes": st.prompt_episodes}
    dataset_id = data.generate(env_id, st.prompt_variant, "prompt", seed=seed, overrides=overrides)
    ds = data.load(dataset_id)
    prompts = []
    for h in range(ds.num_histories):
        history = ds.history(h)
        prompts.append({k: history[k] for k in PROMPT_KEYS})
    return prompts, dataset_id, ds.sha256


def evaluate(
    agent: Agent,
    env_id: str,
    protocol: str = "online-v1",
    seeds: Sequence[int] = (0, 1, 2),
    episodes: int | None = None,
    split: str = "test",
) -> EvalResult:
    """Evaluate ``agent`` on every test task of ``env_id`` under a protocol.

    Args:
        agent: a batched :class:`~icrl_bench.eval.agents.Agent`.
        env_id: a registered family.
        protocol: a protocol id, e.g. ``"online-v1"``.
        seeds: evaluation seeds; all seeds x test tasks run as one batch. Seed ``s`` alone fixes
            its envs' randomness; the agent's own stream is seeded from the whole list
            (:func:`agent_seed`), so the same list always gives the same returns. Each must be
            in ``[0, 2**32)`` and none repeated (:func:`icrl_bench.values.check_seeds`).
        episodes: override E (for smoke tests; leaderboard submissions need the protocol's E).
        split: ``"test"`` (every protocol's split), or ``"train"`` for a diagnostic of how a
            model does on the tasks it was trained on (``EvalResult.split`` records it; the
            leaderboard refuses such results).

    Returns:
        The raw returns (and regret or success where the family defines them).
    """
    spec = family(env_id)
    proto = _protocols.protocol(protocol)
    st = setting(spec.name, protocol)
    n_episodes = int(episodes or st.episodes)
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    dist = tasks(spec.name)
    test = list(dist.test if split == "test" else dist.train)
    bandit = "Bandit" in spec.name
    seeds = check_seeds("evaluation seeds", [int(s) for s in seeds])
    if split == "train" and proto.prompted:
        raise ValueError("prompted protocols take their prompts from the test split")
    out = EvalResult(
        env_id=spec.env_id,
        protocol=proto.id,
        split=split,
        seeds=seeds,
        returns=np.zeros((len(seeds), len(test), n_episodes)),
        regret=np.zeros((len(seeds), len(test), spec.horizon)) if bandit else None,
        actions=np.zeros((len(seeds), len(test), spec.horizon), np.int64) if bandit else None,
        success=(
            np.zeros((len(seeds), len(test), n_episodes))
            if success_source(spec.name) is not None
            else None
        ),
    )
    prompts: list[Mapping[str, np.ndarray]] | None = None
    if proto.prompted:
        prompts = []
        for seed in seeds:
            seed_prompts, dataset_id, sha = _prompts(spec.name, st, seed)
            prompts.extend(seed_prompts)
            out.prompt_dataset.append(dataset_id)
            out.prompt_sha256.append(sha)
    _run_batch(agent, spec.env_id, test, proto, n_episodes, seeds, prompts, out)
    return out


def agent_seed(seeds: Sequence[int]) -> int:
    """The seed of the agent's own random stream for an evaluation over ``seeds``."""
    return int(np.random.SeedSequence([int(s) for s in seeds]).generate_state(1)[0])


def _run_batch(
    agent: Agent,
    env_id: str,
    test: list[Any],
    proto: Protocol,
    n_episodes: int,
    seeds: list[int],
    prompts: Sequence[Mapping[str, np.ndarray]] | None,
    out: EvalResult,
) -> None:
    """Run every (seed, test task) pair as one batch of ``len(seeds) * len(test)`` envs.

    Row ``k * len(test) + i`` is task ``i`` under seed ``k``; its env is seeded from ``(seed, i)``
    alone, and the results are written back as ``[seeds, tasks, ...]``.
    """
    n = len(seeds) * len(test)
    mode = AutoresetMode.SAME_STEP if proto.carry_context else AutoresetMode.DISABLED
    venv = gym.make_vec(
        env_id,
        num_envs=n,
        vectorization_mode="vector_entry_point",
        tasks=test * len(seeds),
        autoreset_mode=mode,
    )
    core = venv.unwrapped._core  # type: ignore[attr-defined]
    if hasattr(agent, "seed"):
        agent.seed(agent_seed(seeds))
    if hasattr(agent, "attach"):
        agent.attach(venv)
    env_seeds = [s for seed in seeds for s in _env_seeds(seed, len(test))]
    obs, _ = venv.reset(seed=env_seeds)  # type: ignore[arg-type]
    rows = np.arange(n)
    # flat [seeds * tasks, ...] views of the result arrays
    returns = out.returns.reshape(n, -1)
    success = None if out.success is None else out.success.reshape(n, -1)
    horizon = 0 if out.regret is None else out.regret.shape[2]

    by_info = success_source(env_id) == "info"

    def succeeded(term: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """Envs whose episode succeeds on this step (success at any step counts)."""
        return np.asarray(info["success"], dtype=bool) if by_info else term

    def record_pull(t: int, actions: np.ndarray) -> None:
        assert out.regret is not None and out.actions is not None
        out.regret.reshape(n, -1)[:, t] = core.regret(actions)
        out.actions.reshape(n, -1)[:, t] = actions

    if proto.carry_context:
        agent.reset(n, prompts)
        episode = np.zeros(n, dtype=np.int64)
        t = 0
        while episode.min() < n_episodes:
            actions = np.asarray(agent.act(obs))
            if t < horizon:
                record_pull(t, actions)
            next_obs, rew, term, trunc, info = venv.step(actions)
            live = episode < n_episodes
            if live.all():
                returns[rows, episode] += rew
            else:
                returns[rows[live], episode[live]] += rew[live]
            done = term | trunc
            if success is not None:
                hit = live & succeeded(term, info)
                success[rows[hit], episode[hit]] = 1.0
            final = next_obs
            if done.any():
                final = next_obs.copy()
                final[done] = info["final_obs"][done]
            agent.observe(obs, actions, rew, final, term, trunc)
            episode += done
            obs = next_obs
            t += 1
    else:
        for e in range(n_episodes):
            if e:
                obs, _ = venv.reset()
            agent.reset(n, None)
            alive = np.ones(n, dtype=bool)
            t = 0
            while alive.any():
                actions = np.asarray(agent.act(obs))
                # a bandit trial is one episode: its regret is that of the first episode
                if e == 0 and t < horizon:
                    record_pull(t, actions)
                next_obs, rew, term, trunc, info = venv.step(actions)
                returns[alive, e] += rew[alive]
                if success is not None:
                    success[alive & succeeded(term, info), e] = 1.0
                agent.observe(obs, actions, rew, next_obs, term, trunc)
                alive &= ~(term | trunc)
                obs = next_obs
                t += 1
    venv.close()
