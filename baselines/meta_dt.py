"""Meta-DT (Wang et al., NeurIPS 2024): a Decision Transformer conditioned on a task
representation from a context-aware world model, with a self-guided prompt.

* **World model.** An encoder reads the last ``h`` transitions ``(s, a, r)`` of the current
  episode (``Config.history``, 4; zero-padded at an episode's start): each part is embedded to
  16 numbers, a GRU runs over the ``h`` steps, and a linear map of its last output is the task
  representation ``z_t``. Two decoders learn it: the reward from ``(s_t, a_t, s_{t+1}, z_t)`` and
  the next state from ``(s_t, a_t, z_t)`` (squared error on standardised states, or
  cross-entropy on a grid's cells). Its loss trains only the world model: the DT reads ``z``
  with gradients stopped, as if the world model were trained first and frozen.
* **Condition token.** Each step is four tokens, ``z_t, R_t, s_t, a_t`` (``R_t`` the
  return-to-go divided by ``return_scale``); ``a_t`` is predicted from the ``s_t`` token.
* **Self-guided prompt.** ``k`` steps (``Config.prompt_length``, 5) of ``(R, s, a)`` tokens,
  with their own type embeddings and the return-to-go within the segment, go in front of the
  window; every window token may read them (the core's ``SHARED`` segment). The prompt is the
  ``k``-step segment of a trajectory of the same task on which the world model's prediction
  error (summed over the segment) is largest: the part of the task the world model finds
  hardest to explain, and so the most informative about it (:func:`select_segment`).

Training windows hold ``history + context`` steps (the first ``history`` only feed ``z``);
tokens attend only within their own episode. The prompt of a training window is a random
``k``-step segment from the same learning history (the same task), and a fraction
``prompt_dropout`` of windows train without one, so that one model serves both modes:

* **zero-shot** (``zero-shot-v1``, or ``few_shot: false``): no prompt; ``z`` from the agent's
  own last ``h`` steps is the only task information.
* **few-shot** (``online-v1``): the first episode is zero-shot; after each episode, the prompt is
  the max-error segment of the env's best-return episode so far (Meta-DT's prompt from its own
  history). Under ``offline-prompt-v1`` the prompt is the max-error segment of the given
  dataset episode, and stays fixed.

At evaluation the prompt's keys and values are computed once, in a KV cache, and every step
recomputes only the last ``context`` steps of the episode against it: exactly the training
layout ``[prompt | window]``.

Differences from the reference code: its world model uses one decoder per environment (reward or
next state) where this one learns both; the reference samples the prompt segment with
probability proportional to its error, where this one takes the largest (argmax), and picks
training prompts by error from separate prompt files, where this one samples them at random;
it fuses ``z`` into the state token, where the condition token here follows the paper's
description; it trains the world model first, where here both learn together with ``z``
detached for the DT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.common.agent import Step, TransformerAgent, stack_prompts
from baselines.common.config import ReturnModelConfig
from baselines.common.data import WindowSampler
from baselines.common.embed import SpaceEmbedding, TransitionEmbedder
from baselines.common.heads import ActionHead
from baselines.common.pipeline import Recipe
from baselines.common.trainer import Batch
from baselines.common.transformer import SHARED, CausalTransformer, KVCache
from baselines.dt import set_target

METHOD = "meta-dt"
VERSION = "1"
#: the segment of padding tokens: nothing else attends to them
PAD = -2
#: width of each part's embedding inside the world model (the reference's 16)
PART = 16


class Token(IntEnum):
    """Meta-DT's token types (rows of ``embed.kind``): a window step's four, then the prompt's
    own three."""

    Z = 0
    RETURN_TO_GO = 1
    STATE = 2
    ACTION = 3
    PROMPT_RETURN_TO_GO = 4
    PROMPT_STATE = 5
    PROMPT_ACTION = 6


#: the tokens of a window step and of a prompt step, in sequence order
WINDOW = (Token.Z, Token.RETURN_TO_GO, Token.STATE, Token.ACTION)
PROMPT = (Token.PROMPT_RETURN_TO_GO, Token.PROMPT_STATE, Token.PROMPT_ACTION)


@dataclass
class Config(ReturnModelConfig):
    """Meta-DT hyperparameters: the shared fields (:class:`~baselines.common.config.ModelConfig`,
    :class:`~baselines.common.config.ReturnModelConfig`), whose defaults are Meta-DT's (K=20,
    d_model 128, 3 blocks, 1 head, dropout 0.1; ``target="data-max"``, where Meta-DT uses each
    task's best return), and Meta-DT's own. Training settings are in ``TrainConfig``.

    Attributes:
        history: transitions the world model's encoder reads, h (Meta-DT: 4).
        latent: width of the task representation z (Meta-DT: 16).
        wm_hidden: GRU and decoder width (Meta-DT: 128).
        wm_weight: weight of the world-model loss.
        prompt_length: steps in the prompt, k (Meta-DT: 5).
        few_shot: under ``online-v1``, prompt each episode after the first from the agent's
            own history (``false``: zero-shot throughout).
        prompt_dropout: fraction of training windows without a prompt (Meta-DT instead trains
            its first 20k steps without one).
    """

    # the world model
    history: int = 4
    latent: int = 16
    wm_hidden: int = 128
    wm_weight: float = 1.0
    # the prompt
    prompt_length: int = 5
    few_shot: bool = True
    prompt_dropout: float = 0.25


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inp, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out),
    )


class WorldModel(nn.Module):
    """The context encoder ``(s, a, r) x h -> z`` and its reward and next-state decoders."""

    def __init__(self, cfg: Config, obs_info: dict[str, Any], act_info: dict[str, Any]) -> None:
        super().__init__()
        self.discrete_obs = obs_info["kind"] == "discrete"
        obs_out = int(obs_info["n"]) if self.discrete_obs else int(np.prod(obs_info["shape"]))
        self.enc_obs = SpaceEmbedding(obs_info, PART)
        self.enc_act = SpaceEmbedding(act_info, PART, scale="box")
        self.enc_rew = nn.Linear(1, PART)
        self.gru = nn.GRU(3 * PART, cfg.wm_hidden, batch_first=True)
        self.to_z = nn.Linear(cfg.wm_hidden, cfg.latent)
        self.dec_obs = SpaceEmbedding(obs_info, PART)
        self.dec_act = SpaceEmbedding(act_info, PART, scale="box")
        self.reward = _mlp(3 * PART + cfg.latent, cfg.wm_hidden, 1)
        self.next_state = _mlp(2 * PART + cfg.latent, cfg.wm_hidden, obs_out)

    def encode(self, obs: Tensor, actions: Tensor, rewards: Tensor, valid: Tensor) -> Tensor:
        """Task representations ``[N, latent]`` from ``h`` transitions ``[N, h, ...]``; steps
        with ``valid`` false (before the episode started) are zeros."""
        parts = [
            F.relu(self.enc_obs(obs)),
            F.relu(self.enc_act(actions)),
            F.relu(self.enc_rew(rewards.float().unsqueeze(-1))),
        ]
        x = torch.cat(parts, dim=-1) * valid.unsqueeze(-1).float()  # [N, h, 3 * PART]
        out, _ = self.gru(x)
        return self.to_z(out[:, -1])

    def errors(
        self, z: Tensor, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor
    ) -> Tensor:
        """Per-step prediction error ``[...]``: squared reward error plus the next-state loss
        (mean squared error of standardised states, or cross-entropy of a grid cell)."""
        s, a = F.relu(self.dec_obs(obs)), F.relu(self.dec_act(actions))
        s_next = F.relu(self.dec_obs(next_obs))
        r_hat = self.reward(torch.cat([s, a, s_next, z], dim=-1)).squeeze(-1)
        pred = self.next_state(torch.cat([s, a, z], dim=-1))
        if self.discrete_obs:
            state = F.cross_entropy(
                pred.flatten(0, -2), next_obs.flatten().long(), reduction="none"
            ).view(next_obs.shape)
        else:
            state = (pred - self.dec_obs.standardise(next_obs)).pow(2).mean(-1)
        return (r_hat - rewards.float()).pow(2) + state


def history_windows(n: int, h: int, device: torch.device) -> Tensor:
    """Indices ``[n, h]``: row ``t`` is ``t .. t + h - 1``, the ``h`` steps before step
    ``t + h`` of a sequence."""
    return torch.arange(n, device=device)[:, None] + torch.arange(h, device=device)[None, :]


def select_segment(errors: Tensor, valid: Tensor, k: int) -> Tensor:
    """The start ``[N]`` of the ``k``-step segment with the largest summed error.

    Args:
        errors: per-step prediction errors ``[N, T]``.
        valid: ``[N, T]``, true on the steps that exist (a left-aligned episode).
        k: segment length.

    Only segments of ``k`` existing steps compete; an episode shorter than ``k`` gives 0.
    """
    n, t = errors.shape
    if t < k:
        return torch.zeros(n, dtype=torch.long, device=errors.device)
    err = torch.where(valid, errors, torch.zeros_like(errors))
    sums = err.unfold(1, k, 1).sum(-1)  # [N, T - k + 1]
    whole = valid.long().unfold(1, k, 1).sum(-1) == k
    sums = torch.where(whole, sums, torch.full_like(sums, -torch.inf))
    start = sums.argmax(dim=1)
    return torch.where(whole.any(dim=1), start, torch.zeros_like(start))


def segment_returns_to_go(rewards: Tensor, valid: Tensor) -> Tensor:
    """Return-to-go within each segment ``[N, k]`` (the prompt's own ``R``)."""
    r = torch.where(valid, rewards.float(), torch.zeros_like(rewards, dtype=torch.float32))
    return r.flip(1).cumsum(1).flip(1)


class MetaDTModel(nn.Module):
    """World model, token embeddings, the shared core (unwindowed) and an action head."""

    target: Tensor

    def __init__(self, cfg: Config, obs_info: dict[str, Any], act_info: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.world = WorldModel(cfg, obs_info, act_info)
        self.embed = TransitionEmbedder(obs_info, act_info, cfg.d_model, kinds=len(Token))
        self.z_proj = nn.Linear(cfg.latent, cfg.d_model)
        self.core = CausalTransformer(cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dropout)
        self.head = ActionHead(act_info, cfg.d_model, cfg.action_head)
        self.register_buffer("target", torch.tensor(float(cfg.target_return)))

    def window_tokens(self, z: Tensor, rtg: Tensor, obs: Tensor, actions: Tensor) -> Tensor:
        """``[B, 4T, d]``: ``z_t, R_t, s_t, a_t`` per step (``rtg`` in raw units)."""
        e = self.embed
        parts = (self.z_proj(z.detach()), e.rewards(rtg / self.cfg.return_scale))
        return e.interleave(dict(zip(WINDOW, (*parts, e.obs(obs), e.action(actions)), strict=True)))

    def prompt_tokens(self, rtg: Tensor, obs: Tensor, actions: Tensor) -> Tensor:
        """``[B, 3k, d]``: ``R, s, a`` per prompt step, with the prompt's own type embeddings."""
        e = self.embed
        parts = (e.rewards(rtg / self.cfg.return_scale), e.obs(obs), e.action(actions))
        return e.interleave(dict(zip(PROMPT, parts, strict=True)))

    def latents(self, obs: Tensor, actions: Tensor, rewards: Tensor, valid: Tensor) -> Tensor:
        """``z`` ``[B, T]`` for steps ``h .. h + T - 1`` of sequences of ``h + T`` steps, each
        from its ``h`` preceding steps (``valid`` ``[B, T, h]`` marks the same episode)."""
        h = self.cfg.history
        b, total = obs.shape[:2]
        idx = history_windows(total - h, h, obs.device)  # [T, h]
        t = total - h
        z = self.world.encode(
            obs[:, idx].flatten(0, 1),
            actions[:, idx].flatten(0, 1),
            rewards[:, idx].flatten(0, 1),
            valid.flatten(0, 1),
        )
        return z.view(b, t, -1)

    def step_errors(
        self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor, valid: Tensor
    ) -> Tensor:
        """World-model error ``[N, T]`` of every step of left-aligned episodes ``[N, T]``,
        each step's ``z`` from the ``h`` steps before it in the episode."""
        h = self.cfg.history

        def pad(x: Tensor) -> Tensor:  # h steps in front, even of an episode shorter than h
            return torch.cat([x.new_zeros((x.shape[0], h, *x.shape[2:])), x], dim=1)

        pv = pad(valid)
        idx = history_windows(obs.shape[1], h, obs.device)
        z = self.latents(pad(obs), pad(actions), pad(rewards), pv[:, idx])
        return self.world.errors(z, obs, actions, rewards, next_obs)

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Training forward: ``(head output [B, K, out], target actions, world-model loss)``."""
        h = self.cfg.history
        obs, act, rew = batch["observations"], batch["actions"], batch["rewards"]
        ep = batch["episode_index"].long()
        total = obs.shape[1]
        idx = history_windows(total - h, h, obs.device)
        valid = ep[:, idx] == ep[:, h:, None]  # [B, K, h]: same episode as the step
        z = self.latents(obs, act, rew, valid)  # [B, K, latent]
        cur = slice(h, total)
        wm = self.world.errors(
            z, obs[:, cur], act[:, cur], rew[:, cur], batch["next_observations"][:, cur]
        )
        x = self.window_tokens(z, batch["returns_to_go"][:, cur], obs[:, cur], act[:, cur])
        segments = ep[:, cur].repeat_interleave(len(WINDOW), dim=1)
        prompt = batch.get("prompt_observations")
        if prompt is not None:
            p = self.prompt_tokens(batch["prompt_returns_to_go"], prompt, batch["prompt_actions"])
            keep = batch["prompt_keep"][:, None].expand(-1, p.shape[1])
            p_seg = torch.where(keep, SHARED, PAD).long()
            x, segments = torch.cat([p, x], dim=1), torch.cat([p_seg, segments], dim=1)
        out = self.core(x, segments=segments)
        n_prompt = 0 if prompt is None else len(PROMPT) * prompt.shape[1]
        states = out[:, n_prompt + WINDOW.index(Token.STATE) :: len(WINDOW)]
        return self.head(states), act[:, cur], wm.mean()


def loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """The action loss of every window step plus ``wm_weight`` times the world model's."""
    assert isinstance(model, MetaDTModel)
    out, targets, wm = model(batch)
    loss, scalars = model.head.loss(out, targets)
    return loss + model.cfg.wm_weight * wm, {**scalars, "world_model": float(wm.detach())}


def make_sampler(cfg: Config, ds: Any, batch_size: int, device: torch.device) -> Any:
    """Batches of windows of ``history + context`` steps with their returns-to-go, and a
    ``prompt_length``-step prompt from the same learning history (dropped for a fraction
    ``prompt_dropout`` of them, per ``prompt_keep``)."""
    windows = WindowSampler(ds, cfg.history + cfg.context, device, returns_to_go=True)

    def sample(rng: np.random.Generator) -> Batch:
        batch = windows(batch_size, rng)
        hist = batch["history_index"][:, 0].cpu().numpy()
        raw = ds.sample_windows(batch_size, cfg.prompt_length, rng, histories=hist)
        p = {k: torch.as_tensor(raw[k]).to(device) for k in ("observations", "actions", "rewards")}
        ones = torch.ones_like(p["rewards"], dtype=torch.bool)
        batch["prompt_observations"] = p["observations"]
        batch["prompt_actions"] = p["actions"]
        batch["prompt_returns_to_go"] = segment_returns_to_go(p["rewards"], ones)
        keep = rng.random(batch_size) >= cfg.prompt_dropout
        batch["prompt_keep"] = torch.as_tensor(keep, device=device)
        return batch

    return sample


class MetaDTAgent(TransformerAgent):
    """Meta-DT acting from a target return, batched over trials.

    Each env keeps the last ``history + context - 1`` steps of its current episode; each step
    recomputes the window against the prompt's cached keys and values (see the module
    docstring). Under ``online-v1`` the prompt of an env is rebuilt when one of its episodes
    ends with its best return so far.
    """

    name = METHOD

    def __init__(self, model: MetaDTModel) -> None:
        super().__init__(model)
        self.model: MetaDTModel = model
        self.n = 0
        self.buf: dict[str, Tensor] = {}
        self.count = torch.zeros(0, dtype=torch.long)
        self.rtg = torch.zeros(0)
        self.fixed_prompt = False
        self.prompt: dict[str, Tensor] | None = None
        self.trace: list[dict[str, Tensor]] = []
        self.ep_start = torch.zeros(0, dtype=torch.long)
        self.ep_return = torch.zeros(0)
        self.best = torch.zeros(0)
        self.current: dict[str, Tensor] = {}

    # -- prompts ------------------------------------------------------------------------------
    @torch.no_grad()
    def choose_prompt(
        self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor, valid: Tensor
    ) -> dict[str, Tensor]:
        """The max-error ``k``-step segment of each episode ``[N, T]`` (left-aligned)."""
        k = self.cfg.prompt_length
        errors = self.model.step_errors(obs, actions, rewards, next_obs, valid)
        if obs.shape[1] < k:  # pad short episodes to k steps (the padding stays invalid)
            extra = k - obs.shape[1]
            grow = lambda x: torch.cat([x, x[:, :1].expand(-1, extra, *x.shape[2:])], 1)  # noqa: E731
            obs, actions, rewards = grow(obs), grow(actions), grow(rewards)
            valid = torch.cat([valid, torch.zeros_like(valid[:, :1]).expand(-1, extra)], 1)
            errors = torch.cat([errors, torch.zeros_like(errors[:, :1]).expand(-1, extra)], 1)
        start = select_segment(errors, valid, k)
        idx = start[:, None] + torch.arange(k, device=obs.device)[None, :]
        rows = torch.arange(obs.shape[0], device=obs.device)[:, None]
        seg_valid = valid[rows, idx]
        return {
            "observations": obs[rows, idx],
            "actions": actions[rows, idx],
            "returns_to_go": segment_returns_to_go(rewards[rows, idx], seg_valid),
            "valid": seg_valid,
        }

    @torch.no_grad()
    def _encode_prompt(self) -> None:
        """Recompute the prompt's KV cache (empty when no env has a prompt)."""
        self.cache = KVCache()
        p = self.prompt
        if p is None or not bool(p["present"].any()):
            return
        x = self.model.prompt_tokens(p["returns_to_go"], p["observations"], p["actions"])
        ok = (p["valid"] & p["present"][:, None]).repeat_interleave(len(PROMPT), dim=1)
        seg = torch.where(ok, SHARED, PAD).long()
        self.model.core(x, cache=self.cache, segments=seg)

    def _set_prompt(self, rows: Tensor, chosen: dict[str, Tensor]) -> None:
        if self.prompt is None:
            self.prompt = {
                k: torch.zeros((self.n, *v.shape[1:]), dtype=v.dtype, device=self.device)
                for k, v in chosen.items()
            }
            self.prompt["present"] = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        for k, v in chosen.items():
            self.prompt[k][rows] = v
        self.prompt["present"][rows] = True

    # -- the agent protocol -------------------------------------------------------------------
    @torch.no_grad()
    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Start ``num_envs`` trials; choose each env's prompt from the given episodes."""
        self.n = num_envs
        self.cache = KVCache()
        self.buf = {}
        self.count = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.rtg = torch.full((num_envs,), float(self.model.target), device=self.device)
        self.prompt = None
        self.trace = []
        self.ep_start = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.ep_return = torch.zeros(num_envs, device=self.device)
        self.best = torch.full((num_envs,), -torch.inf, device=self.device)
        self.fixed_prompt = bool(prompts)
        p = stack_prompts(prompts, 1 << 30) if prompts else None
        if p is not None:
            obs, nxt = self._t(p["observations"]), self._t(p["next_observations"])
            act, rew = self._actions(p["actions"]), self._t(p["rewards"], torch.float32)
            valid = torch.ones(rew.shape, dtype=torch.bool, device=self.device)
            rows = torch.arange(num_envs, device=self.device)
            self._set_prompt(rows, self.choose_prompt(obs, act, rew, nxt, valid))
            self._encode_prompt()

    def _window(self, name: str, current: Tensor) -> Tensor:
        """The buffered steps of ``name`` followed by the current step: ``[B, h + K, ...]``."""
        return torch.cat([self.buf[name], current[:, None]], dim=1)

    @torch.no_grad()
    def logits(self, obs: np.ndarray) -> Tensor:
        """The head's output ``[B, out]`` at the current states."""
        m, cfg = self.model, self.cfg
        o = self._t(obs)
        length = cfg.history + cfg.context - 1
        if not self.buf:
            none = m.embed.action
            act_shape = () if none.discrete else (m.head.dim,)
            act_dtype = torch.long if none.discrete else torch.float32
            self.buf = {
                "observations": torch.zeros((self.n, length, *o.shape[1:]), dtype=o.dtype),
                "actions": torch.zeros((self.n, length, *act_shape), dtype=act_dtype),
                "rewards": torch.zeros(self.n, length),
                "returns_to_go": torch.zeros(self.n, length),
                "z": torch.zeros(self.n, length, cfg.latent),
            }
            self.buf = {k: v.to(self.device) for k, v in self.buf.items()}
        # steps of the current episode: the buffer's last `count`, then this one
        pos = torch.arange(length + 1, device=self.device)
        valid = pos[None, :] >= (length - self.count.clamp(max=length))[:, None]  # [B, L + 1]
        h = cfg.history
        hist = slice(length - h, length)
        z = m.world.encode(
            self.buf["observations"][:, hist],
            self.buf["actions"][:, hist],
            self.buf["rewards"][:, hist],
            valid[:, hist],
        )
        zero_act = torch.zeros_like(self.buf["actions"][:, 0])
        win = slice(h, length + 1)  # the last K steps
        x = m.window_tokens(
            self._window("z", z)[:, win],
            self._window("returns_to_go", self.rtg)[:, win],
            self._window("observations", o)[:, win],
            self._window("actions", zero_act)[:, win],
        )[:, :-1]  # the current action is what is predicted
        seg = torch.where(valid[:, win], 0, PAD).long().repeat_interleave(len(WINDOW), dim=1)
        seg = seg[:, :-1]
        out = m.core(x, cache=self.cache, store=False, segments=seg)
        self.current = {"observations": o, "z": z, "returns_to_go": self.rtg}
        return m.head(out[:, -1])

    def remember(self, step: Step) -> None:
        """Buffer the step, update the return-to-go, and at an episode's end restart from the
        target (and, few-shot, re-prompt from the agent's best episode)."""
        a, r = self._actions(step.action), self._reward(step)
        current = {**self.current, "actions": a, "rewards": r}
        for k, v in current.items():
            self.buf[k] = torch.cat([self.buf[k][:, 1:], v[:, None].to(self.buf[k].dtype)], 1)
        self.count += 1
        self.rtg = self.rtg - r
        self.ep_return = self.ep_return + r
        few_shot = self.cfg.few_shot and not self.fixed_prompt
        if few_shot:
            self.trace.append(
                {
                    "observations": current["observations"],
                    "actions": a,
                    "rewards": r,
                    "next_observations": self._t(step.next_obs),
                }
            )
        done = self._t(step.done, torch.bool)
        if not bool(done.any()):
            return
        if few_shot:
            self._reprompt(done)
        self.count = torch.where(done, 0, self.count)
        self.rtg = torch.where(done, self.model.target.to(self.rtg.dtype), self.rtg)
        self.ep_return = torch.where(done, 0.0, self.ep_return)

    def _reprompt(self, done: Tensor) -> None:
        """Prompt the finished envs whose episode was their best so far from that episode."""
        now = len(self.trace)
        better = done & (self.ep_return >= self.best)
        if bool(better.any()):
            rows = better.nonzero().squeeze(1)
            start = self.ep_start[rows]
            longest = int((now - start).max())
            steps = start[:, None] + torch.arange(longest, device=self.device)[None, :]
            valid = steps < now
            steps = steps.clamp(max=now - 1)
            ep = {
                k: torch.stack([t[k] for t in self.trace], dim=1)[rows[:, None], steps]
                for k in self.trace[0]
            }
            chosen = self.choose_prompt(
                ep["observations"], ep["actions"], ep["rewards"], ep["next_observations"], valid
            )
            self._set_prompt(rows, chosen)
            self.best = torch.where(better, self.ep_return, self.best)
            self._encode_prompt()
        self.ep_start = torch.where(done, now, self.ep_start)
        first = int(self.ep_start.min())
        if first:  # forget steps no env's current episode needs
            self.trace = self.trace[first:]
            self.ep_start = self.ep_start - first


RECIPE = Recipe(
    VERSION, Config, MetaDTModel, make_sampler, loss_fn, MetaDTAgent, prepare=set_target
)
