"""Soft Actor-Critic learning histories for the MuJoCo families (Stable-Baselines3's SAC).

One SAC learner per (task, history), as Meta-DT and T2MIR train one SAC agent per task. Every
transition the learner takes while it trains is recorded, so a history runs from random
exploration to a trained policy (the ``histories`` variant). For the ``medium`` / ``expert`` /
``medium-expert`` variants the learner first trains for ``train_episodes`` without recording,
keeping a snapshot of its policy at ``medium_fraction`` of training; then the recorded episodes
are rolled out by the frozen snapshot (medium) or the final policy (expert), sampling from the
policy's distribution. The recipe runs one task per worker process (``tasks_per_chunk = 1``), so
a machine's cores train that many tasks at once.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import gymnasium as gym
import numpy as np

from icrl_bench.data.sources import Collected
from icrl_bench.errors import optional_import
from icrl_bench.references import cache_path, cached
from icrl_bench.tasks import Task
from icrl_bench.workers import die_with_parent


def _sb3() -> Any:
    return optional_import("stable_baselines3", "SAC datasets", "pip install 'icrl-bench[mujoco]'")


def _recorder(sb3: Any, steps: list[tuple[Any, ...]], record: bool) -> Any:
    """An SB3 callback that keeps every transition of the learner's training."""
    from stable_baselines3.common.callbacks import BaseCallback  # the optional mujoco extra

    class Recorder(BaseCallback):
        def _on_step(self) -> bool:
            if record:
                loc = self.locals
                done = bool(loc["dones"][0])
                info = loc["infos"][0]
                nxt = info["terminal_observation"] if done else loc["new_obs"][0]
                trunc = bool(info.get("TimeLimit.truncated", False))
                steps.append(
                    (
                        np.array(self.model._last_obs, dtype=np.float32)[0],
                        np.asarray(loc["actions"][0], dtype=np.float32),
                        float(loc["rewards"][0]),
                        np.asarray(nxt, dtype=np.float32),
                        done and not trunc,
                        trunc,
                    )
                )
            return True

    return Recorder()


def _learner(
    env: gym.Env,
    episodes: int,
    seed: int,
    learning_starts: int,
    learning_rate: float,
    batch_size: int,
    net_arch: Sequence[int],
) -> tuple[Any, int]:
    """A seeded SB3 SAC learner on ``env`` (reset with ``seed``), one torch thread, learning from
    at most a quarter of its ``episodes`` (at least one episode); returns it and the horizon."""
    import torch  # deferred: the data layer imports without torch (tests/test_architecture.py)

    sb3 = _sb3()
    torch.set_num_threads(1)  # one learner per core
    horizon = int(env.unwrapped.horizon)  # type: ignore[attr-defined]
    env.reset(seed=seed)
    model = sb3.SAC(
        "MlpPolicy",
        env,
        learning_rate=learning_rate,
        batch_size=batch_size,
        learning_starts=min(learning_starts, max(horizon, (episodes * horizon) // 4)),
        policy_kwargs={"net_arch": list(net_arch)},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    return model, horizon


def run_sac(
    env_id: str,
    task: Task,
    episodes: int,
    seed: int,
    record_from: int = 0,
    medium: bool = False,
    medium_fraction: float = 0.5,
    learning_starts: int = 1000,
    learning_rate: float = 3e-4,
    batch_size: int = 256,
    net_arch: Sequence[int] = (256, 256),
) -> list[tuple[Any, ...]]:
    """Train one SAC learner on ``task``; return the recorded transitions in order.

    With ``record_from = 0`` the learner's whole training is recorded (a learning history of
    ``episodes`` episodes). Otherwise it trains ``record_from`` episodes unrecorded and the policy
    (the final one, or the ``medium_fraction`` snapshot when ``medium``) rolls out the remaining
    ``episodes - record_from`` episodes.
    """
    import torch  # deferred: the data layer imports without torch (tests/test_architecture.py)

    env = gym.make(env_id, task=task)
    model, horizon = _learner(
        env, episodes, seed, learning_starts, learning_rate, batch_size, net_arch
    )
    steps: list[tuple[Any, ...]] = []
    if record_from == 0:
        model.learn(episodes * horizon, callback=_recorder(_sb3(), steps, True))
        env.close()
        return _whole_episodes(steps)
    train_steps = record_from * horizon
    snapshot = None
    if medium:
        first = max(1, round(medium_fraction * train_steps))
        model.learn(first)
        snapshot = copy.deepcopy(model.policy.state_dict())
        model.learn(train_steps - first, reset_num_timesteps=False)
        model.policy.load_state_dict(snapshot)
    else:
        model.learn(train_steps)
    rng_seed = seed + 1
    obs, _ = env.reset(seed=rng_seed)
    torch.manual_seed(rng_seed)
    for _ in range(episodes - record_from):
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=False)
            nxt, rew, term, trunc, _ = env.step(action)
            steps.append(
                (
                    np.asarray(obs, np.float32),
                    np.asarray(action, np.float32),
                    float(rew),
                    np.asarray(nxt, np.float32),
                    bool(term),
                    bool(trunc),
                )
            )
            done = term or trunc
            obs = nxt
        obs, _ = env.reset()
    env.close()
    return steps


def _whole_episodes(steps: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Drop a last episode that the step budget cut short (early terminations shift the
    episode ends, and a dataset's episodes must end in a termination or truncation)."""
    ends = [i for i, s in enumerate(steps) if s[4] or s[5]]
    return steps[: ends[-1] + 1] if ends else []


def _expert_return(job: tuple[str, Task, int, int, int]) -> float:
    """One task's SAC expert: its mean return over ``episodes`` after ``train_episodes``."""
    env_id, task, train_episodes, episodes, seed = job
    steps = run_sac(env_id, task, train_episodes + episodes, seed, record_from=train_episodes)
    return sum(s[2] for s in steps) / episodes


def expert_returns(
    env_id: str,
    tasks: Sequence[Task],
    train_episodes: int,
    episodes: int = 5,
    seed: int = 0,
    workers: int | None = None,
) -> np.ndarray:
    """Mean return per task of a SAC expert trained ``train_episodes`` episodes on it: the
    locomotion families' expert reference.

    The tasks train in parallel, one per worker process (``workers``: the machine's cores by
    default); task ``i`` is seeded ``seed + i`` whatever the number of workers.
    """
    jobs = [(env_id, task, train_episodes, episodes, seed + i) for i, task in enumerate(tasks)]
    n = min(len(jobs), workers or os.cpu_count() or 1)
    if n <= 1:
        return np.asarray([_expert_return(j) for j in jobs])
    ctx = get_context("spawn")  # torch in the parent: no fork
    with ProcessPoolExecutor(
        max_workers=n, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        return np.asarray(list(pool.map(_expert_return, jobs)))


def collect_sac(
    env_id: str,
    tasks: Sequence[Task],
    histories: int,
    episodes: int,
    params: dict[str, Any],
    seed: Sequence[int],
    record_from: int = 0,
) -> Collected:
    """SAC learners for ``histories`` histories on each task, as a :class:`Collected` batch.

    ``params`` holds the learner settings; ``expert_share`` (0 to 1) makes that share of the
    frozen histories expert and the rest medium (``medium-expert``); ``history_kind`` records
    which (2 medium, 3 expert; 0 for learning histories).
    """
    params = dict(params)
    expert_share = float(params.pop("expert_share", 1.0))
    params.pop("freeze_after", None)
    root = np.random.SeedSequence(list(seed))
    pick = np.random.default_rng(root.spawn(1)[0])
    runs: list[tuple[list[tuple[Any, ...]], int]] = []
    for task in tasks:
        for _ in range(histories):
            run_seed = int(root.spawn(1)[0].generate_state(1)[0] % (2**31 - 1))
            expert = record_from > 0 and pick.random() < expert_share
            steps = run_sac(
                env_id,
                task,
                episodes,
                run_seed,
                record_from=record_from,
                medium=record_from > 0 and not expert,
                **params,
            )
            runs.append((steps, 0 if record_from == 0 else (3 if expert else 2)))
    return _collected(runs, histories)


class TaskConditioned(gym.Wrapper):
    """A locomotion env that shows its task: every reset draws one of ``tasks`` (from its own
    seeded generator; ``options={"task": t}`` picks one), and every observation is followed by
    the task's features (:meth:`~icrl_bench.envs.mujoco_env.LocomotionSpace.features`)."""

    def __init__(self, env: gym.Env, tasks: Sequence[Task], seed: int) -> None:
        super().__init__(env)
        self.tasks = tuple(tasks)
        self.rng = np.random.default_rng(seed)
        space = env.unwrapped._space  # type: ignore[attr-defined]
        self._features = {t: space.features(t) for t in self.tasks}
        self.features = self._features[self.tasks[0]]
        base = env.observation_space
        assert isinstance(base, gym.spaces.Box)
        k = len(self.features)
        self.observation_space = gym.spaces.Box(
            np.append(base.low, np.full(k, -np.inf)).astype(np.float32),
            np.append(base.high, np.full(k, np.inf)).astype(np.float32),
            dtype=np.float32,
        )

    def _show(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, self.features]).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset on a drawn (or the given) task."""
        task = (options or {}).get("task") or self.tasks[int(self.rng.integers(len(self.tasks)))]
        self.features = self._features.get(task)
        if self.features is None:
            self.features = self.env.unwrapped._space.features(task)  # type: ignore[attr-defined]
        obs, info = self.env.reset(seed=seed, options={"task": task})
        return self._show(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step the env; the observation carries the task's features."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._show(obs), float(reward), terminated, truncated, info


def train_conditioned(
    env_id: str,
    tasks: Sequence[Task],
    train_episodes: int,
    seed: int,
    medium_fraction: float = 0.5,
    learning_starts: int = 1000,
    learning_rate: float = 3e-4,
    batch_size: int = 256,
    net_arch: Sequence[int] = (256, 256),
) -> tuple[Any, dict[str, Any]]:
    """Train one SAC learner on ``tasks`` together, told each episode's task: ``train_episodes``
    episodes in all, each on a task drawn uniformly. Returns the trained model and the state
    of its policy at ``medium_fraction`` of training (the medium snapshot)."""
    env = TaskConditioned(gym.make(env_id), tasks, seed)
    model, horizon = _learner(
        env, train_episodes, seed, learning_starts, learning_rate, batch_size, net_arch
    )
    total = train_episodes * horizon
    first = max(1, round(medium_fraction * total))
    model.learn(first)
    medium = copy.deepcopy(model.policy.state_dict())
    model.learn(total - first, reset_num_timesteps=False)
    env.close()
    return model, medium


def collect_conditioned_sac(
    env_id: str,
    tasks: Sequence[Task],
    histories: int,
    episodes: int,
    params: dict[str, Any],
    seed: Sequence[int],
    train_episodes: int,
) -> Collected:
    """The oracle-conditioned SAC source: one learner trained on all of ``tasks``
    (:func:`train_conditioned`), then frozen; each history is ``episodes`` episodes of one task
    rolled out by its final policy (expert, a share ``expert_share`` of the histories) or its
    medium snapshot, sampling from the policy. The stored observations are the env's own,
    without the task's features.

    The rollouts of all histories run at once, one env each, with one batched policy call per
    step.
    """
    import torch

    params = dict(params)
    expert_share = float(params.pop("expert_share", 1.0))
    root = np.random.SeedSequence(list(seed))
    pick = np.random.default_rng(root.spawn(1)[0])
    train_seed = int(root.spawn(1)[0].generate_state(1)[0] % (2**31 - 1))
    model, medium = train_conditioned(env_id, tasks, train_episodes, train_seed, **params)
    expert = copy.deepcopy(model.policy.state_dict())
    jobs = [(t, pick.random() < expert_share) for t in tasks for _ in range(histories)]
    rollout_seed = int(root.spawn(1)[0].generate_state(1)[0] % (2**31 - 1))
    torch.manual_seed(rollout_seed)
    recorded: list[list[tuple[Any, ...]]] = [[] for _ in jobs]
    for is_expert, weights in ((False, medium), (True, expert)):
        chosen = [i for i, (_, e) in enumerate(jobs) if e == is_expert]
        if not chosen:
            continue
        model.policy.load_state_dict(weights)
        envs = [TaskConditioned(gym.make(env_id, task=jobs[i][0]), [jobs[i][0]], 0) for i in chosen]
        seeds = [rollout_seed + i for i in chosen]  # history i's env: the same in either group
        _roll_out(model, envs, [recorded[i] for i in chosen], episodes, seeds)
    return _collected(
        [(r, 3 if e else 2) for r, (_, e) in zip(recorded, jobs, strict=True)], histories
    )


def _roll_out(
    model: Any,
    envs: Sequence[TaskConditioned],
    out: Sequence[list[tuple[Any, ...]]],
    episodes: int,
    seeds: Sequence[int],
) -> None:
    """Run every env (first reset with its seed in ``seeds``) for ``episodes`` episodes in
    lockstep, acting with one batched call of ``model``'s stochastic policy per step; append
    each env's transitions (without the task's features) to its list in ``out``. An env whose
    episodes are done waits for the others."""
    k = [len(e.features) for e in envs]
    obs = [e.reset(seed=s)[0] for e, s in zip(envs, seeds, strict=True)]
    done_eps = np.zeros(len(envs), dtype=np.int64)
    while (done_eps < episodes).any():
        actions, _ = model.predict(np.stack(obs), deterministic=False)
        for i, env in enumerate(envs):
            if done_eps[i] >= episodes:
                continue
            nxt, rew, term, trunc, _ = env.step(actions[i])
            out[i].append(
                (
                    obs[i][: -k[i]],
                    np.asarray(actions[i], np.float32),
                    float(rew),
                    nxt[: -k[i]],
                    bool(term),
                    bool(trunc),
                )
            )
            obs[i] = nxt
            if term or trunc:
                done_eps[i] += 1
                obs[i] = env.reset()[0]
    for env in envs:
        env.close()


def _collected(runs: Sequence[tuple[list[tuple[Any, ...]], int]], histories: int) -> Collected:
    """Histories in task-major order (``histories`` per task), each a list of transitions
    ``(obs, action, reward, next_obs, terminated, truncated)`` and its history kind, as one
    :class:`Collected` batch."""
    rows: dict[str, list[Any]] = {k: [] for k in ("obs", "act", "rew", "next", "term", "trunc")}
    task_i, hist_i, ep_i, step_i, kinds = [], [], [], [], []
    for r, (steps, kind) in enumerate(runs):
        kinds.append(kind)
        episode, step = 0, 0
        for obs, act, rew, nxt, term, trunc in steps:
            for key, value in zip(rows, (obs, act, rew, nxt, term, trunc), strict=True):
                rows[key].append(value)
            task_i.append(r // histories)
            hist_i.append(r % histories)
            ep_i.append(episode)
            step_i.append(step)
            step += 1
            if term or trunc:
                episode, step = episode + 1, 0
    return Collected(
        observations=np.stack(rows["obs"]).astype(np.float32),
        next_observations=np.stack(rows["next"]).astype(np.float32),
        actions=np.stack(rows["act"]).astype(np.float32),
        rewards=np.asarray(rows["rew"], dtype=np.float64),
        terminations=np.asarray(rows["term"], dtype=bool),
        truncations=np.asarray(rows["trunc"], dtype=bool),
        optimal_actions=None,
        task=np.asarray(task_i, dtype=np.int64),
        history=np.asarray(hist_i, dtype=np.int64),
        episode=np.asarray(ep_i, dtype=np.int64),
        step=np.asarray(step_i, dtype=np.int64),
        history_kind=np.asarray(kinds, dtype=np.int8),
    )


def train_expert_references(
    family: str, tasks: Sequence[Task], horizon: int, train_episodes: int
) -> dict[str, np.ndarray]:
    """Train the SAC expert of every task and cache its mean return as the expert reference
    (:func:`icrl_bench.references.sac_expert_references` reads it), with the number of
    training episodes it took. A cached reference trained for another number of episodes is
    retrained and replaced, never returned for this one.
    """
    path = cache_path(family, tasks, horizon, "expert")
    if path.exists():
        recorded = json.loads(path.read_text()).get("train_episodes")
        if recorded != [train_episodes]:
            path.unlink()  # another recipe's expert: retrain for this one
    return cached(
        family,
        tasks,
        horizon,
        "expert",
        lambda: {
            "return": expert_returns(f"icrl_bench/{family}", tasks, train_episodes),
            "train_episodes": np.asarray([train_episodes]),
        },
    )
