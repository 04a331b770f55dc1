"""The protocol runner: every test task of a seed as one batch through the vector env."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from icrl_bench.eval.agents import Agent
from icrl_bench.eval.protocols import Protocol, Setting, protocol, setting
from icrl_bench.registry import family, tasks

#: families whose episodes succeed by terminating (reaching the goal, opening the door)
SUCCESS_ON_TERMINATION = ("DarkRoomHard-v0", "KeyToDoor-v0")


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


def _env_seeds(seed: int, n: int) -> list[int]:
    """Independent per-env seeds for an evaluation seed (no overlap between seeds)."""
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)]


def _prompts(env_id: str, st: Setting, seed: int) -> tuple[list[dict[str, np.ndarray]], str, str]:
    from icrl_bench import data

    assert st.prompt_variant is not None
    overrides = {"episodes": st.prompt_episodes}
    dataset_id = data.generate(env_id, st.prompt_variant, "prompt", seed=seed, overrides=overrides)
    ds = data.load(dataset_id)
    prompts = [ds.history(h) for h in range(ds.num_histories)]
    return prompts, dataset_id, ds.sha256


def evaluate(
    agent: Agent,
    env_id: str,
    protocol_id: str = "online-v1",
    seeds: Sequence[int] = (0, 1, 2),
    episodes: int | None = None,
) -> EvalResult:
    """Evaluate ``agent`` on every test task of ``env_id`` under a protocol.

    Args:
        agent: a batched :class:`~icrl_bench.eval.agents.Agent`.
        env_id: a registered family.
        protocol_id: e.g. ``"online-v1"``.
        seeds: evaluation seeds; each runs all test tasks as one batch.
        episodes: override E (for smoke tests; leaderboard submissions need the protocol's E).

    Returns:
        The raw returns (and regret or success where the family defines them).
    """
    spec = family(env_id)
    proto = protocol(protocol_id)
    st = setting(spec.name, protocol_id)
    n_episodes = int(episodes or st.episodes)
    test = list(tasks(spec.name).test)
    bandit = "Bandit" in spec.name
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate needs at least one seed")
    out = EvalResult(
        env_id=spec.env_id,
        protocol=proto.id,
        seeds=seeds,
        returns=np.zeros((len(seeds), len(test), n_episodes)),
        regret=np.zeros((len(seeds), len(test), spec.horizon)) if bandit else None,
        actions=np.zeros((len(seeds), len(test), spec.horizon), np.int64) if bandit else None,
        success=(
            np.zeros((len(seeds), len(test), n_episodes))
            if spec.name in SUCCESS_ON_TERMINATION
            else None
        ),
    )
    for k, seed in enumerate(seeds):
        prompts = None
        if proto.prompted:
            prompts, dataset_id, sha = _prompts(spec.name, st, seed)
            out.prompt_dataset.append(dataset_id)
            out.prompt_sha256.append(sha)
        _run_seed(agent, spec.env_id, test, proto, n_episodes, seed, prompts, out, k)
    return out


def _record_pull(out: EvalResult, core: Any, k: int, t: int, actions: np.ndarray) -> None:
    assert out.regret is not None and out.actions is not None
    out.regret[k, :, t] = core.regret(actions)
    out.actions[k, :, t] = actions


def _run_seed(
    agent: Agent,
    env_id: str,
    test: list[Any],
    proto: Protocol,
    n_episodes: int,
    seed: int,
    prompts: Sequence[Mapping[str, np.ndarray]] | None,
    out: EvalResult,
    k: int,
) -> None:
    n = len(test)
    mode = AutoresetMode.SAME_STEP if proto.carry_context else AutoresetMode.DISABLED
    venv = gym.make_vec(
        env_id, num_envs=n, vectorization_mode="vector_entry_point", tasks=test, autoreset_mode=mode
    )
    core = venv.unwrapped._core  # type: ignore[attr-defined]
    if hasattr(agent, "seed"):
        agent.seed(seed)
    if hasattr(agent, "attach"):
        agent.attach(venv)
    obs, _ = venv.reset(seed=_env_seeds(seed, n))  # type: ignore[arg-type]
    rows = np.arange(n)
    if proto.carry_context:
        agent.reset(n, prompts)
        episode = np.zeros(n, dtype=np.int64)
        t = 0
        while episode.min() < n_episodes:
            actions = np.asarray(agent.act(obs))
            if out.regret is not None and t < out.regret.shape[2]:
                _record_pull(out, core, k, t, actions)
            next_obs, rew, term, trunc, info = venv.step(actions)
            live = episode < n_episodes
            out.returns[k, rows[live], episode[live]] += rew[live]
            done = term | trunc
            final = next_obs.copy()
            if done.any():
                final[done] = info["final_obs"][done]
                if out.success is not None:
                    hit = live & term
                    out.success[k, rows[hit], episode[hit]] = 1.0
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
                if out.regret is not None and e == 0 and t < out.regret.shape[2]:
                    _record_pull(out, core, k, t, actions)
                next_obs, rew, term, trunc, _ = venv.step(actions)
                out.returns[k, alive, e] += rew[alive]
                if out.success is not None:
                    out.success[k, alive & term, e] = 1.0
                agent.observe(obs, actions, rew, next_obs, term, trunc)
                alive &= ~(term | trunc)
                obs = next_obs
                t += 1
    venv.close()
