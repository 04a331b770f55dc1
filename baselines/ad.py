"""Algorithm Distillation (AD; Laskin et al., 2022), with AD-epsilon's data (Zisman et al., 2023).

AD trains a causal transformer on windows of learning histories that span several episodes, to
predict the next action of the source learner. Because the windows cross episode boundaries, the
model learns the learner's improvement itself; at evaluation it acts from its own accumulated
context (``online-v1``), keeping a rolling window of ``context`` transitions, and improves in
context with frozen weights.

Attention is windowed: each token sees the ``context`` transitions up to itself, in training and
at evaluation, where a sliding KV cache carries the trial along exactly.

Tokens (``Config.tokens``):

* ``"transition"``: one token per step, ``emb(s_t) + emb(a_{t-1}) + emb(r_{t-1})``; the action
  ``a_t`` is read from that token. Training windows hold ``context + 1`` transitions so that the
  first token has its real previous action and reward. The first step of a trial has no previous
  action: it uses the action table's extra "none" row.
* ``"interleaved"``: three tokens per step, ``s_t, a_t, r_t``, as in the AD-epsilon code; ``a_t``
  is read from the ``s_t`` token.

Both use the shared core (:mod:`baselines.common`). Continuous actions (``Box``) use a continuous
action head (``Config.action_head``) and the zero vector, the middle of the action box, as "no
previous action"; continuous observations are standardised with the training data's statistics.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from baselines.common.agent import Step, TransformerAgent, stack_prompts
from baselines.common.config import ConfigError, HistoryModelConfig
from baselines.common.data import WindowSampler
from baselines.common.model import SequenceModel
from baselines.common.pipeline import Recipe
from baselines.common.trainer import Batch
from baselines.common.transformer import KVCache
from icrl_bench.data.store import DatasetError
from icrl_bench.errors import IcrlBenchError

METHOD = "ad"
#: 2: action sampling with a temperature and coordinate embeddings of grid cells (new fields
#: whose defaults are version 1's behaviour, so version-1 checkpoints load unchanged)
VERSION = "2"
TOKENS = ("transition", "interleaved")
EPISODE_ORDERS = ("history", "return")


class Token(IntEnum):
    """The token types of the ``"interleaved"`` layout (rows of ``embed.kind``)."""

    OBS = 0
    ACTION = 1
    REWARD = 2


@dataclass
class ADFields:
    """AD's own fields, and the shared fields whose defaults AD takes from AD-epsilon: a mixin
    over :class:`~baselines.common.config.HistoryModelConfig` (:class:`Config`, and T2MIR-AD's
    config).

    Attributes:
        context: transitions in the model's window, in training and at evaluation (AD-epsilon:
            80 on Dark Room, i.e. 4 episodes of 20 steps).
        d_model: token width.
        n_heads: attention heads (AD-epsilon: 4; 4 blocks).
        tokens: ``"transition"`` or ``"interleaved"`` (see the module docstring).
        label_smoothing: of the cross-entropy (AD-epsilon: 0).
        episode_order: what a window holds. ``"history"`` (AD): consecutive transitions of a
            learning history, in the order the learner took them. ``"return"`` (T2MIR-AD's
            code): ``context / H + 1`` episodes of one history (``H`` the dataset's one
            episode length) drawn at random and sorted by return, ascending, the window being
            their last ``context`` transitions (plus the one before); at evaluation the context
            is the agent's last ``context / H - 1`` episodes, re-sorted by return after each
            episode, followed by the current one.
    """

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "tokens": TOKENS,
        "episode_order": EPISODE_ORDERS,
    }

    context: int = 80
    d_model: int = 64
    n_heads: int = 4
    tokens: str = "transition"
    label_smoothing: float = 0.0
    episode_order: str = "history"


@dataclass
class Config(ADFields, HistoryModelConfig):
    """AD hyperparameters: the shared fields (:class:`~baselines.common.config.ModelConfig`,
    :class:`~baselines.common.config.HistoryModelConfig`) and :class:`ADFields`. Training
    settings are in ``TrainConfig``.

    ``action_selection`` is ``"argmax"`` by default (AD-epsilon evaluates the mode);
    ``"sample"`` is DICP's and tommyma3's AD: without it, every test task walks the same path
    until a reward appears.
    """


class ADModel(SequenceModel):
    """Embeddings, the shared causal transformer (windowed to ``context`` transitions) and an
    action head (``ffn_factory``: T2MIR-AD's mixture-of-experts layers)."""

    token_types = Token
    grid = True

    @classmethod
    def attention_window(cls, cfg: ADFields) -> int:
        """``context`` transitions: as many tokens, or three per transition (interleaved)."""
        return cfg.context * (1 if cfg.tokens == "transition" else len(Token))

    def none_actions(self, n: int, device: torch.device) -> Tensor:
        """ "No previous action" for ``n`` trials: the extra table row, or the zero vector."""
        if self.head.kind == "categorical":
            return torch.full((n,), self.embed.action.none_index, device=device)
        return torch.zeros(n, self.head.dim, device=device)

    def step_tokens(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """``"transition"`` tokens ``[B, T, d]`` of ``(s_t, a_{t-1}, r_{t-1})``."""
        e = self.embed
        return e.obs(obs) + e.action(prev_action) + e.rewards(prev_reward)

    def sequence(self, obs: Tensor, actions: Tensor, rewards: Tensor) -> Tensor:
        """``"interleaved"`` tokens ``[B, 3T, d]``: ``s_0, a_0, r_0, s_1, ...``."""
        e = self.embed
        return e.interleave(
            {
                Token.OBS: e.obs(obs),
                Token.ACTION: e.action(actions),
                Token.REWARD: e.rewards(rewards),
            }
        )

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Training forward over windows: ``(logits [B, T, A], targets [B, T])``."""
        obs, act, rew = batch["observations"], batch["actions"], batch["rewards"]
        if self.cfg.tokens == "transition":
            x = self.step_tokens(obs[:, 1:], act[:, :-1], rew[:, :-1])
            return self.head(self.core(x)), act[:, 1:]
        h = self.core(self.sequence(obs, act, rew))
        return self.head(h[:, Token.OBS :: len(Token)]), act


def loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """The action head's loss (cross-entropy, or the continuous head's) of the next action over
    every position of every window."""
    assert isinstance(model, ADModel)
    out, targets = model(batch)
    return model.head.loss(out, targets, label_smoothing=model.cfg.label_smoothing)


def make_sampler(
    cfg: Config, ds: Any, batch_size: int, device: torch.device, paired: bool = False
) -> Any:
    """Batches of windows of ``context`` transitions (plus the one before, for
    ``"transition"`` tokens); ``paired``: two windows per learning history (T2MIR). The
    windows follow ``cfg.episode_order``."""
    length = cfg.context + (1 if cfg.tokens == "transition" else 0)
    if cfg.episode_order == "return":
        return functools.partial(SortedEpisodes(cfg, ds, length, device), batch_size, paired=paired)
    windows = WindowSampler(ds, length, device)
    return functools.partial(windows, batch_size, paired=paired)


class SortedEpisodes:
    """T2MIR-AD's windows (``episode_order="return"``): ``context / H + 1`` random episodes
    of one learning history, sorted by return (ascending), cut to their last ``length``
    transitions, so the window ends with the best of them.

    Raises:
        ConfigError: the dataset's episodes differ in length, or ``context`` is not a multiple
            of it.
    """

    def __init__(self, cfg: ADFields, ds: Any, length: int, device: torch.device) -> None:
        try:
            horizon = ds.episode_length()
        except DatasetError as e:
            raise ConfigError(f"episode_order 'return': {e}") from None
        if cfg.context % horizon:
            raise ConfigError(
                f"episode_order 'return' needs model.context ({cfg.context}) to be a multiple "
                f"of the episode length ({horizon})"
            )
        self.ds, self.length, self.device = ds, length, device
        self.n = cfg.context // horizon + 1

    def draw(
        self, batch: int, rng: np.random.Generator, histories: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """``batch`` sorted windows as arrays (``history_index`` among them)."""
        sets = self.ds.sample_episode_sets(batch, self.n, rng, histories=histories)
        order = np.argsort(sets.pop("episode_returns"), axis=1, kind="stable")
        del sets["histories"]  # also in every step's history_index
        out = {}
        for k, v in sets.items():
            v = np.take_along_axis(v, order.reshape(*order.shape, *[1] * (v.ndim - 2)), axis=1)
            out[k] = v.reshape(batch, -1, *v.shape[3:])[:, -self.length :]
        return out

    def __call__(
        self, batch: int, rng: np.random.Generator, paired: bool = False
    ) -> dict[str, Tensor]:
        """As :class:`~baselines.common.data.WindowSampler`: with ``paired``, window
        ``i + batch // 2`` comes from the same history as window ``i``."""
        if not paired:
            raw = self.draw(batch, rng)
        else:
            if batch % 2:
                raise ValueError(f"a paired batch needs an even size, got {batch}")
            first = self.draw(batch // 2, rng)
            second = self.draw(batch // 2, rng, histories=first["history_index"][:, 0])
            raw = {k: np.concatenate([first[k], second[k]]) for k in first}
        return {k: torch.as_tensor(v).to(self.device) for k, v in raw.items()}


class ADAgent(TransformerAgent):
    """AD acting from its own accumulated context, batched over trials.

    Its context is a KV cache trimmed to the attention window; ``reset`` clears it (and encodes
    a prompt when the protocol gives one). With ``episode_order="return"`` the agent keeps its
    last ``context / H - 1`` episodes and, after each episode, rebuilds the cache from the
    prompt (if any) and those episodes sorted by return, ascending (T2MIR-AD's evaluation);
    this needs every trial's episodes to end together (one episode length, as in training).
    """

    name = METHOD

    def __init__(self, model: ADModel) -> None:
        super().__init__(model)
        self.model: ADModel = model
        self.prev_action: Tensor | None = None
        self.prev_reward: Tensor | None = None
        self.prompt: dict[str, Tensor] | None = None
        self.episode: list[tuple[Tensor, Tensor, Tensor]] = []
        self.kept: list[dict[str, Tensor]] = []

    @torch.no_grad()
    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Clear the context of ``num_envs`` trials; encode the prompts if given."""
        self.cache = KVCache()
        none = self.model.none_actions(num_envs, self.device)
        self.prev_action, self.prev_reward = none, torch.zeros(num_envs, device=self.device)
        self.prompt, self.episode, self.kept = None, [], []
        p = stack_prompts(prompts, self.cfg.context) if prompts else None
        if p is None:
            return
        self.prompt = {
            "observations": self._t(p["observations"]),
            "actions": self._actions(p["actions"]),
            "rewards": self._t(p["rewards"], torch.float32),
        }
        self._encode([self.prompt])

    def _encode(self, parts: Sequence[Mapping[str, Tensor]]) -> None:
        """Refill the cache with ``parts`` (``[B, T_i]`` transitions each) in order."""
        obs = torch.cat([q["observations"] for q in parts], dim=1)
        act = torch.cat([q["actions"] for q in parts], dim=1)
        rew = torch.cat([q["rewards"] for q in parts], dim=1)
        self.cache = KVCache()
        if self.cfg.tokens == "transition":
            none = self.model.none_actions(obs.shape[0], self.device)
            prev_a = torch.cat([none[:, None], act[:, :-1]], dim=1)
            prev_r = torch.cat([torch.zeros_like(rew[:, :1]), rew[:, :-1]], dim=1)
            self.model.core(self.model.step_tokens(obs, prev_a, prev_r), cache=self.cache)
        else:
            self.model.core(self.model.sequence(obs, act, rew), cache=self.cache)
        self.prev_action, self.prev_reward = act[:, -1], rew[:, -1]

    @torch.no_grad()
    def logits(self, obs: np.ndarray) -> Tensor:
        """The head's output ``[B, out]`` for the current observations (appends their tokens)."""
        o = self._t(obs)[:, None]
        assert self.prev_action is not None and self.prev_reward is not None
        if self.cfg.tokens == "transition":
            x = self.model.step_tokens(o, self.prev_action[:, None], self.prev_reward[:, None])
        else:
            x = self.model.embed.tag(self.model.embed.obs(o), Token.OBS)
        return self.model.head(self.model.core(x, cache=self.cache)[:, -1])

    @torch.no_grad()
    def remember(self, step: Step) -> None:
        """The step's action and reward enter the next token(s); with
        ``episode_order="return"``, a finished episode re-sorts the context."""
        a, r = self._actions(step.action), self._reward(step)
        if self.cfg.tokens == "interleaved":
            e = self.model.embed
            x = [
                e.tag(e.action(a[:, None]), Token.ACTION),
                e.tag(e.rewards(r[:, None]), Token.REWARD),
            ]
            self.model.core(torch.cat(x, 1), cache=self.cache)
        self.prev_action, self.prev_reward = a, r
        if self.cfg.episode_order == "return":
            self.episode.append((self._t(step.obs), a, r))
            done = np.asarray(step.done, dtype=bool)
            if done.any():
                if not done.all():
                    raise IcrlBenchError(
                        "episode_order 'return' needs every trial's episodes to end together "
                        "(one episode length, as its training data)"
                    )
                self._resort()

    def _resort(self) -> None:
        """Keep the finished episode, drop the oldest beyond ``context / H - 1``, and rebuild
        the cache from the prompt and the kept episodes sorted by return."""
        obs, act, rew = (torch.stack(x, dim=1) for x in zip(*self.episode, strict=True))
        self.episode = []
        horizon = obs.shape[1]
        keep = max(self.cfg.context // horizon - 1, 0)
        self.kept = [*self.kept, {"observations": obs, "actions": act, "rewards": rew}][-keep:]
        if keep == 0:
            self.kept = []
        if not self.kept:
            none = self.model.none_actions(obs.shape[0], self.device)
            self.cache, self.prev_action = KVCache(), none
            self.prev_reward = torch.zeros(obs.shape[0], device=self.device)
            if self.prompt is not None:
                self._encode([self.prompt])
            return
        returns = torch.stack([k["rewards"].sum(1) for k in self.kept], dim=1)  # [B, k]
        order = torch.argsort(returns, dim=1, stable=True)
        rows = torch.arange(obs.shape[0], device=self.device)[:, None]
        stacked = {
            name: torch.stack([k[name] for k in self.kept], dim=1)[rows, order].flatten(1, 2)
            for name in ("observations", "actions", "rewards")
        }
        self._encode([*([self.prompt] if self.prompt is not None else []), stacked])


RECIPE = Recipe(VERSION, Config, ADModel, make_sampler, loss_fn, ADAgent)
