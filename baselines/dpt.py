"""Decision-Pretrained Transformer (DPT; Lee et al., 2023).

DPT takes a query state and an in-context set of transitions ``(s, a, r, s')`` from the same
task, and predicts the optimal action at the query state. It is trained by supervised learning on
the optimal-action labels that the dataset store keeps for every step.

Training, as the reference code does it (``query="history"``, ``shuffle=True``,
``positions="none"``): the context is a set of transitions of one task (on the grid families,
DPT's ``uniform-rollin`` data: independent transitions from uniformly drawn states), in a random
order; the query is a state drawn uniformly from the same task's data (so, on that data, uniform
over the state space), labelled with its optimal action; the loss is the cross-entropy of the
query's action after every prefix of the context. Without positions the context is a set: the
model cannot read anything from the order, which carries no information.

Layout. The reference code puts the query first and reads a prediction after every context
token, so one sequence trains every context size at once. A query in front would have to be
re-encoded with the whole context at every step, so here the query comes *after* the context:
the sequence is ``c_1 .. c_N, q_0 .. q_N``, where the query token ``q_j`` (same state) attends to
``c_1 .. c_j`` and itself only. That trains all ``N + 1`` context sizes in one pass, like the
reference, and at evaluation the context lives in a KV cache: each step runs one query token
against it without storing it (``store=False``).

Evaluation (``eval_context``):

* ``"episodes"`` (the reference's online mode): the context is the agent's last
  ``context_episodes`` complete episodes, held fixed during the current episode; the first
  episode of a trial starts from an empty context (or the prompt, where the protocol gives one).
* ``"sliding"``: every transition is appended as it happens, and the context is the last
  ``context`` of them (the current episode included).

Actions are sampled from the predicted distribution at ``temperature`` (the reference's online
mode, temperature 1) or taken by argmax (its "greedy" offline mode), per ``action_selection``.

Continuous actions: the reference's continuous DPT regresses the optimal action with a squared
error; ``action_head="auto"`` does the same here (``"gaussian"`` is the alternative), and
continuous observations are standardised with the training data's statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from baselines.common.agent import Step, TransformerAgent, stack_prompts
from baselines.common.config import HistoryModelConfig
from baselines.common.data import WindowSampler
from baselines.common.embed import SpaceEmbedding
from baselines.common.model import SequenceModel
from baselines.common.pipeline import Recipe
from baselines.common.trainer import Batch
from baselines.common.transformer import KVCache
from icrl_bench.registry import family

METHOD = "dpt"
#: 2: uniform queries from the task's data, shuffled set contexts without positions, evaluation
#: on the last complete episodes, coordinate embeddings (see ``LEGACY`` for version 1);
#: 3: the grid configs embed each context transition's action and next state gated by its reward
#: (``reward_gated``), which made training leave its loss plateau on every seed tried
VERSION = "3"
#: the fields a version-1 checkpoint's config lacks, with the behaviour it was trained and
#: evaluated with (filled in when such a checkpoint is loaded)
LEGACY: dict[str, Any] = {
    "query": "window",
    "query_every": 1,
    "shuffle": False,
    "label": "stored",
    "positions": "rope",
    "eval_context": "sliding",
    "context_episodes": 1,
    "obs_table": True,
    "temperature": 1.0,
    "episode_noise": 0.0,
}
QUERIES = ("window", "history")
EVAL_CONTEXTS = ("sliding", "episodes")
LABELS = ("stored", "all-optimal")
POSITIONS = ("none", "rope")


class Token(IntEnum):
    """DPT's token types (rows of ``embed.kind``)."""

    QUERY = 0
    CONTEXT = 1


@dataclass
class DPTFields:
    """DPT's own fields, and the shared fields whose defaults DPT takes from the reference: a
    mixin over :class:`~baselines.common.config.HistoryModelConfig` (:class:`Config`, and
    T2MIR-DPT's config).

    Attributes:
        context: most context transitions, in training and at evaluation (the reference: the
            horizon, 500 on bandits and 100 on Dark Room 10x10).
        d_model: token width (the reference: 32).
        dropout: dropout (the reference: 0).
        action_selection: ``"sample"`` (online in the reference) or ``"argmax"`` (greedy).
        episode_noise: scale of a per-episode Gumbel bias on each action's logit, drawn once
            per trial and episode and held for the whole episode (0: the reference's
            independent per-step sampling). A positive scale makes an episode favour the same
            actions wherever they are plausible, so that it follows one direction far into
            unexplored cells instead of dithering around the start.
        append_own: after a prompt, add the agent's own transitions to the context.
        query: where a training query state comes from: ``"history"`` (a transition drawn
            uniformly from the same learning history as the context; on ``uniform-rollin``
            data, a uniform state of the task) or ``"window"`` (one of the context's own
            states; version 1).
        shuffle: present each training context in a random order (the reference permutes
            its i.i.d. contexts).
        query_every: read the query after every ``query_every``-th context size (and the full
            context) instead of after every one: ``1`` is the reference's loss over all
            ``N + 1`` prefixes, in ``2N + 1`` tokens; ``k`` trains ``N / k + 1`` of them in
            ``N + N / k + 1`` tokens, nearly halving a step's cost, while the prefixes it skips
            differ from their neighbours by one transition.
        label: the query's target: ``"stored"`` (the dataset's one optimal action, the
            reference's one-hot label) or ``"all-optimal"`` (a uniform distribution over every
            optimal action at the query state, computed from the task by the family's core
            where it can enumerate them, else the stored one). On the grids the oracle breaks
            ties x-first, so one-hot labels teach a policy that, not knowing the goal, almost
            only moves along x; all-optimal labels keep both directions.
        positions: ``"none"`` (the context is a set: every token at position 0) or ``"rope"``
            (rotary positions, which a context of a trajectory can use).
        eval_context: ``"episodes"`` (the last ``context_episodes`` complete episodes, fixed
            within an episode: the reference's online mode) or ``"sliding"`` (the last
            ``context`` transitions, appended as they happen).
        context_episodes: complete episodes in the ``"episodes"`` context (the reference: 1).
        reward_gated: also embed each context transition's action and next state multiplied by
            its reward, ``r * (f(a) + g(s'))`` (the reference embeds ``(s, a, r, s')`` linearly
            only). Attention that is still spread evenly over the context then already carries
            where rewards were found, instead of that signal arriving only once attention has
            learned to single out the rewarded transitions.
    """

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "query": QUERIES,
        "label": LABELS,
        "positions": POSITIONS,
        "eval_context": EVAL_CONTEXTS,
    }

    context: int = 100
    d_model: int = 32
    dropout: float = 0.0
    action_selection: str = "sample"
    episode_noise: float = 0.0
    append_own: bool = True
    query: str = "history"
    shuffle: bool = True
    query_every: int = 1
    label: str = "all-optimal"
    positions: str = "none"
    eval_context: str = "episodes"
    context_episodes: int = 1
    reward_gated: bool = False


@dataclass
class Config(DPTFields, HistoryModelConfig):
    """DPT hyperparameters: the shared fields (:class:`~baselines.common.config.ModelConfig`,
    :class:`~baselines.common.config.HistoryModelConfig`) and :class:`DPTFields`. Training
    settings are in ``TrainConfig``.

    The reference's GPT-2 config hard-codes one attention head (``n_heads``; 4 blocks), and its
    online mode samples at temperature 1; ``"argmax"`` is its "greedy" offline mode. DPT's Dark
    Room states are coordinates, where ours are cell indices: ``obs_coords`` embeds a cell's
    ``(x, y)``.
    """


def prefix_sizes(n: int, every: int) -> list[int]:
    """The context sizes a training sequence reads a query after: ``0, every, 2 * every, ...``
    and always ``n`` (``every=1``: all ``n + 1`` of them, as the reference)."""
    sizes = list(range(0, n + 1, every))
    return sizes if sizes[-1] == n else [*sizes, n]


def query_mask(
    n: int, device: torch.device | None = None, sizes: list[int] | None = None
) -> Tensor:
    """Attention mask ``[n+m, n+m]`` of ``c_1..c_n, q_1..q_m`` (True attends): context causal,
    query ``q_i`` sees the first ``sizes[i]`` context tokens and itself (default sizes
    ``0..n``: the ``2n+1`` tokens of every prefix)."""
    sizes = list(range(n + 1)) if sizes is None else sizes
    m = len(sizes)
    mask = torch.zeros(n + m, n + m, dtype=torch.bool, device=device)
    mask[:n, :n] = torch.ones(n, n, dtype=torch.bool, device=device).tril()
    i = torch.arange(m, device=device)
    mask[n + i, n + i] = True
    size = torch.as_tensor(sizes, device=device)
    mask[n:, :n] = torch.arange(n, device=device)[None, :] < size[:, None]
    return mask


class DPTModel(SequenceModel):
    """Transition embeddings, the shared causal transformer and an action head
    (``ffn_factory``: T2MIR-DPT's mixture-of-experts layers)."""

    token_types = Token
    grid = True

    def build(self, obs_info: dict[str, Any], act_info: dict[str, Any]) -> None:
        """The reward-gated embeddings of ``reward_gated``."""
        c = self.cfg
        if c.reward_gated:
            self.gated_action = SpaceEmbedding(act_info, c.d_model, with_none=True, scale="box")
            self.gated_next = SpaceEmbedding(
                obs_info, c.d_model, coords=c.obs_coords, table=c.obs_table
            )

    @classmethod
    def attention_window(cls, cfg: DPTFields) -> int:
        """A query reads the last ``context`` transitions: ``context + 1`` tokens."""
        return cfg.context + 1

    def context_tokens(
        self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor
    ) -> Tensor:
        """``[B, T, d]`` tokens of context transitions."""
        e = self.embed
        x = e.obs(obs) + e.action(actions) + e.rewards(rewards) + e.next_obs(next_obs)
        if self.cfg.reward_gated:
            gate = rewards.float().unsqueeze(-1)
            x = x + gate * (self.gated_action(actions) + self.gated_next(next_obs))
        return e.tag(x, Token.CONTEXT)

    def query_tokens(self, obs: Tensor) -> Tensor:
        """``[B, T, d]`` tokens of query states."""
        return self.embed.tag(self.embed.obs(obs), Token.QUERY)

    def positions(self, first: int, count: int, device: torch.device) -> Tensor | None:
        """Positions of ``count`` tokens from ``first``: zeros for a set context, else ``None``
        (the transformer's default: the next positions)."""
        if self.cfg.positions == "none":
            return torch.zeros(count, dtype=torch.long, device=device)
        return None

    def forward(self, batch: Batch) -> Tensor:
        """Training forward: the head's output ``[B, M, out]`` for the query after each context
        size of :func:`prefix_sizes` (``M = N + 1`` with ``query_every=1``)."""
        obs = batch["observations"]
        b, n = obs.shape[:2]
        ctx = self.context_tokens(
            obs, batch["actions"], batch["rewards"], batch["next_observations"]
        )
        sizes = prefix_sizes(n, self.cfg.query_every)
        q = self.query_tokens(batch["query"][:, None]).expand(b, len(sizes), -1)
        if self.cfg.positions == "none":
            positions = torch.zeros(n + len(sizes), dtype=torch.long, device=obs.device)
        else:
            positions = torch.cat([torch.arange(n), torch.as_tensor(sizes)]).to(obs.device)
        mask = query_mask(n, obs.device, sizes)
        h = self.core(torch.cat([ctx, q], dim=1), attn_mask=mask, positions=positions)
        return self.head(h[:, n:])


def loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """The head's loss (cross-entropy, or squared error for continuous actions) of the optimal
    action at the query, averaged over every context size (the reference sums them)."""
    assert isinstance(model, DPTModel)
    out = model(batch)
    label = batch["label"]
    if "label_probs" in batch:  # a distribution over every optimal action: soft cross-entropy
        probs = batch["label_probs"][:, None].expand(-1, out.shape[1], -1)
        loss = -(probs * torch.log_softmax(out, dim=-1)).sum(-1).mean()
        hit = batch["label_probs"].gather(1, out[:, -1].argmax(-1, keepdim=True)) > 0
        return loss, {"accuracy_full_context": float(hit.float().mean())}
    target = label[:, None].expand(-1, out.shape[1], *label.shape[1:])
    loss, _ = model.head.loss(out, target)
    _, full = model.head.loss(out[:, -1], label)
    return loss, {f"{k}_full_context": v for k, v in full.items()}


def make_sampler(
    cfg: Config, ds: Any, batch_size: int, device: torch.device, paired: bool = False
) -> Any:
    """Batches of ``context`` transitions of one task (shuffled per ``cfg.shuffle``) and a query
    state of that task with its optimal action (per ``cfg.query``); ``paired``: two windows per
    learning history (T2MIR)."""
    if not ds.has_optimal_actions:
        raise ValueError(f"DPT needs optimal-action labels, and {ds.id} has none")
    windows = WindowSampler(ds, cfg.context, device)
    core, tasks = family(ds.manifest["family"]).core(), ds.tasks()

    def sample(rng: np.random.Generator) -> Batch:
        batch = windows(batch_size, rng, paired=paired)
        rows = torch.arange(batch_size, device=device)
        if cfg.query == "history":
            hist = batch["history_index"][:, 0].cpu().numpy()
            drawn = ds.sample_rows(hist, rng)
            batch["query"] = torch.as_tensor(drawn["observations"], device=device)
            batch["label"] = torch.as_tensor(drawn["optimal_actions"], device=device)
            if cfg.label == "all-optimal":
                chosen = [tasks[i] for i in drawn["task_index"].tolist()]
                mask = core.optimal_action_mask(chosen, drawn["observations"])
                if mask is not None:
                    probs = mask / mask.sum(axis=1, keepdims=True)
                    batch["label_probs"] = torch.as_tensor(
                        probs, dtype=torch.float32, device=device
                    )
        else:  # a state of the same window, with its optimal action as the label
            pick = torch.as_tensor(rng.integers(cfg.context, size=batch_size), device=device)
            batch["query"] = batch["observations"][rows, pick]
            batch["label"] = batch["optimal_actions"][rows, pick]
        if cfg.shuffle:
            order = torch.as_tensor(rng.random((batch_size, cfg.context)).argsort(1), device=device)
            for key in ("observations", "actions", "rewards", "next_observations"):
                value = batch[key]
                index = order.view(*order.shape, *([1] * (value.dim() - 2))).expand_as(value)
                batch[key] = value.gather(1, index)
        return batch

    return sample


_PARTS = ("observations", "actions", "rewards", "next_observations")


class DPTAgent(TransformerAgent):
    """DPT acting from a context of transitions held in a KV cache, batched over trials.

    With ``eval_context="episodes"`` each trial's steps are kept (the prompt first, where there
    is one) with the step at which each of its last ``context_episodes + 1`` episodes began;
    whenever a trial's episode ends, the cache is rebuilt from every trial's last complete
    episodes (the last ``context`` steps of them; trials whose contexts differ in length are
    left-padded, and the padding is masked out of every query). With ``"sliding"`` each
    transition is appended to the cache as it happens.
    """

    name = METHOD

    def __init__(self, model: DPTModel) -> None:
        super().__init__(model)
        self.model: DPTModel = model
        self.prompted = False
        self.valid: Tensor | None = None  # [B, L]: which cached tokens are real (episodes mode)
        self.steps: dict[str, list[np.ndarray]] = {}  # per part, one [B, ...] array per step
        self.starts = np.zeros((0, 1), dtype=np.int64)  # [B, K + 1] first step of each episode
        self.stale = False
        self.bias: Tensor | None = None  # [B, A] this episode's Gumbel bias (episode_noise)

    @torch.no_grad()
    def _append(self, obs: Any, actions: Any, rewards: Any, next_obs: Any) -> None:
        x = self.model.context_tokens(
            self._t(obs),
            self._actions(actions),
            self._t(rewards, torch.float32),
            self._t(next_obs),
        )
        positions = self.model.positions(self.cache.position, x.shape[1], x.device)
        self.model.core(x, cache=self.cache, positions=positions)

    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Clear the context; start it from the prompts when given."""
        self.cache = KVCache()
        self.valid = None
        self.bias = None
        self.prompted = bool(prompts)
        p = stack_prompts(prompts, self.cfg.context) if prompts else None
        if self.cfg.eval_context == "sliding":
            if p is not None:
                self._append(p["observations"], p["actions"], p["rewards"], p["next_observations"])
            return
        # episodes mode: the prompt is kept as the trial's first, already complete, steps
        self.steps = {k: [] if p is None else list(np.swapaxes(p[k], 0, 1)) for k in _PARTS}
        self.starts = np.zeros((num_envs, self.cfg.context_episodes + 1), dtype=np.int64)
        self.starts[:, -1] = len(self.steps["actions"])
        self.stale = True

    @torch.no_grad()
    def _rebuild(self) -> None:
        """Encode every trial's last complete episodes into a fresh cache (episodes mode)."""
        self.cache = KVCache()
        self.stale = False
        first, end = self.starts[:, 0], self.starts[:, -1]  # [B]: context = steps first..end-1
        length = int(min(self.cfg.context, (end - first).max()))
        if length == 0:
            self.valid = None
            return
        index = end[:, None] - length + np.arange(length)  # [B, L], the last `length` steps
        valid = index >= first[:, None]
        index = np.maximum(index, 0)
        lo, hi = int(index.min()), int(end.max())  # stack only the steps any context uses
        rows = np.arange(len(end))[:, None]
        ctx = {k: np.stack(v[lo:hi], axis=1)[rows, index - lo] for k, v in self.steps.items()}
        valid_t = torch.as_tensor(valid, device=self.device)
        causal = torch.ones(length, length, dtype=torch.bool, device=self.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=self.device)
        # a token sees the real tokens up to itself, and itself (padding never sees nothing)
        mask = (causal[None] & valid_t[:, None, :]) | eye
        x = self.model.context_tokens(
            self._t(ctx["observations"]),
            self._actions(ctx["actions"]),
            self._t(ctx["rewards"], torch.float32),
            self._t(ctx["next_observations"]),
        )
        positions = self.model.positions(0, length, self.device)
        self.model.core(x, attn_mask=mask[:, None], positions=positions, cache=self.cache)
        self.valid = valid_t

    @torch.no_grad()
    def logits(self, obs: np.ndarray) -> Tensor:
        """The head's output ``[B, out]`` for the optimal action at the current states (the
        context is unchanged)."""
        if self.cfg.eval_context == "episodes" and self.stale:
            self._rebuild()
        q = self.model.query_tokens(self._t(obs)[:, None])
        positions = self.model.positions(self.cache.position, 1, self.device)
        mask = None
        if self.valid is not None:
            own = torch.ones(len(obs), 1, dtype=torch.bool, device=self.device)
            mask = torch.cat([self.valid, own], dim=1)[:, None, None]
        h = self.model.core(q, cache=self.cache, store=False, positions=positions, attn_mask=mask)
        out = self.model.head(h[:, -1])
        if self.cfg.episode_noise > 0 and self.head.kind == "categorical":
            if self.bias is None:
                self.bias = self._gumbel(out.shape)
            out = out + self.cfg.episode_noise * self.bias
        return out

    def _gumbel(self, shape: torch.Size | tuple[int, ...]) -> Tensor:
        """Standard Gumbel noise from the agent's sampling stream."""
        u = torch.rand(shape, generator=self.generator).clamp_(1e-12, 1.0 - 1e-7)
        return (-torch.log(-torch.log(u))).to(self.device)

    def remember(self, step: Step) -> None:
        """Add the transition to the context: at once (sliding), or once its episode is
        complete (episodes mode). A trial whose episode ends draws a new episode bias."""
        ended = step.done
        parts = (step.obs, step.action, step.reward, step.next_obs)
        if ended.any() and self.bias is not None:
            fresh = self._gumbel(self.bias.shape)
            rows = torch.as_tensor(ended)
            self.bias[rows.to(self.device)] = fresh[rows.to(fresh.device)]
        if self.prompted and not self.cfg.append_own:
            return
        if self.cfg.eval_context == "sliding":
            self._append(*(v[:, None] for v in parts))
            return
        for key, value in zip(_PARTS, parts, strict=True):
            self.steps[key].append(value)
        if ended.any():
            now = len(self.steps["actions"])
            self.starts[ended] = np.roll(self.starts[ended], -1, axis=1)
            self.starts[ended, -1] = now
            self.stale = True


def legacy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the config fields a version-1 checkpoint lacks set to their version-1
    behaviour (:data:`LEGACY`); other versions unchanged."""
    if str(meta.get("version")) != "1":
        return meta
    model = {**LEGACY, **meta["config"]["model"]}
    return {**meta, "config": {**meta["config"], "model": model}}


RECIPE = Recipe(VERSION, Config, DPTModel, make_sampler, loss_fn, DPTAgent, upgrade=legacy_meta)
