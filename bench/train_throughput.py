"""Training throughput of the shipped AD, DPT, DT and Meta-DT configs of a family (DarkRoom-v0 by
default; ``--family PointRobot-v0`` or ``HalfCheetahVel-v0`` for continuous ones) against a plain
fp32 ``nn.TransformerEncoder`` of the same size.

Usage: python bench/train_throughput.py [--family DarkRoom-v0] [--steps 20] [--threads 2]
[--methods ad dpt dt meta-dt] [--tiny]

For each method, both sides train on the same batches, drawn by the method's own sampler from a
small dataset of the family, of the method's kind, with AdamW and gradient clipping:

* ours: the method's model and loss (``baselines.ad`` / ``baselines.dpt``) with the shipped
  ``baselines/configs/<method>/<family>.yaml`` model settings and batch size, run the way
  the trainer runs it (``TrainConfig.amp``: bfloat16 autocast where the config asks for it);
* reference: the same embeddings and action head around PyTorch's ``nn.TransformerEncoder``
  (pre-LN, GELU, 4x feed-forward, the same width, depth, heads and dropout, learned positions,
  fp32; cross-entropy for discrete actions, the squared error of a ``tanh`` output in the box
  scaled to ``[-1, 1]`` for continuous ones), over the sequence a reference implementation
  trains on: AD's window of transition
  tokens under a causal mask; DPT's query token followed by the context, read after every
  context prefix under a causal mask (the reference DPT layout).

Prints transitions per second for each (best of 3 timed runs of ``--steps`` updates after
warm-up) and their ratio (target >= 2x). ``--tiny`` times one update of batch 2 on smoke data,
to check the script runs.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _tiny import parse_args
from torch import Tensor, nn

from baselines import ad, dpt, dt, meta_dt
from baselines.common.config import build, read_config
from baselines.common.pipeline import spaces_of, standardise_observations
from baselines.common.trainer import TrainConfig
from icrl_bench.registry import family


def action_loss(head: Any, out: Tensor, target: Tensor) -> Tensor:
    """The reference's loss: cross-entropy of discrete actions, or the squared error of ``tanh``
    outputs to continuous actions scaled to ``[-1, 1]`` by the method's own head."""
    if head.kind == "categorical":
        return F.cross_entropy(out.flatten(0, -2), target.flatten().long())
    return (torch.tanh(out) - head.scale(target.reshape(*out.shape))).pow(2).mean()


class EncoderCore(nn.Module):
    """``nn.TransformerEncoder`` with learned positions: the reference core."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, dropout: float, length: int):
        super().__init__()
        self.pos = nn.Embedding(length, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 4 * d_model, dropout, "gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        """Causal encoding of ``[B, T, d]`` tokens."""
        x = x + self.pos.weight[: x.shape[1]]
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.norm(self.encoder(x, mask=mask, is_causal=True))


class SwappedCore(nn.Module):
    """:class:`EncoderCore` behind the shared core's call signature: a plain causal mask over
    the whole sequence, where ours also masks by episode segment and attention window."""

    def __init__(self, cfg: Any, length: int) -> None:
        super().__init__()
        self.core = EncoderCore(cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dropout, length)

    def forward(self, x: Tensor, segments: Tensor | None = None) -> Tensor:
        """Causal encoding of ``[B, T, d]`` tokens; ``segments`` is ignored."""
        return self.core(x)


class ReferenceSwap(nn.Module):
    """DT or Meta-DT with its core replaced by the reference one: the same embeddings, world
    model, token layout, head and loss."""

    def __init__(self, ours: nn.Module, module: Any, length: int) -> None:
        super().__init__()
        self.model = copy.deepcopy(ours)
        self.model.core = SwappedCore(ours.cfg, length)
        self.loss_fn = module.loss_fn

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The method's own loss."""
        return self.loss_fn(self.model, batch)[0]


def sequence_length(method: str, cfg: Any) -> int:
    """Tokens in one training sequence of DT (``3K``) or Meta-DT (``3k`` prompt + ``4K``)."""
    if method == "dt":
        return len(dt.Token) * cfg.context
    return len(meta_dt.PROMPT) * cfg.prompt_length + len(meta_dt.WINDOW) * cfg.context


class ReferenceAD(nn.Module):
    """AD's embeddings and head around the reference core: one token per transition."""

    def __init__(self, ours: ad.ADModel) -> None:
        super().__init__()
        cfg = ours.cfg
        self.embed, self.head = ours.embed, nn.Linear(cfg.d_model, ours.head.dim)
        self.action_head = ours.head
        self.core = EncoderCore(cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dropout, cfg.context)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The action loss of every next action in the window."""
        obs, act, rew = batch["observations"], batch["actions"], batch["rewards"]
        e = self.embed
        x = e.obs(obs[:, 1:]) + e.action(act[:, :-1]) + e.rewards(rew[:, :-1])
        return action_loss(self.action_head, self.head(self.core(x)), act[:, 1:])


class ReferenceDPT(nn.Module):
    """DPT's embeddings and head around the reference core, in the reference layout: the query
    state first, then the context, a prediction after every prefix (``N + 1`` tokens)."""

    def __init__(self, ours: dpt.DPTModel) -> None:
        super().__init__()
        cfg = ours.cfg
        self.model, self.head = ours, nn.Linear(cfg.d_model, ours.head.dim)
        self.core = EncoderCore(
            cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dropout, cfg.context + 1
        )

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Cross-entropy of the query's label after every context prefix."""
        m = self.model
        ctx = m.context_tokens(
            batch["observations"], batch["actions"], batch["rewards"], batch["next_observations"]
        )
        x = torch.cat([m.query_tokens(batch["query"][:, None]), ctx], dim=1)
        out = self.head(self.core(x))  # [B, N + 1, A]
        label = batch["label"]
        target = label[:, None].expand(-1, out.shape[1], *label.shape[1:])
        return action_loss(m.head, out, target)


def rate(
    params: Any,
    step_loss: Callable[[dict[str, Tensor]], Tensor],
    batches: list,
    steps: int,
    amp: bool,
    transitions: int,
    repeats: int = 3,
) -> float:
    """Transitions per second of AdamW updates over ``batches`` (best of ``repeats`` runs, after
    a warm-up of as many updates)."""
    opt = torch.optim.AdamW(params, lr=1e-3)

    def run(n: int) -> None:
        for i in range(n):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = step_loss(batches[i % len(batches)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()

    run(repeats)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(steps)
        best = min(best, time.perf_counter() - start)
    return steps * transitions / best


#: the methods the bench times, by name
MODULES: dict[str, Any] = {"ad": ad, "dpt": dpt, "dt": dt, "meta-dt": meta_dt}


def reference_for(method: str, ours: nn.Module) -> nn.Module:
    """The reference model of ``method`` around ``ours``' embeddings and head."""
    if method == "ad":
        return ReferenceAD(ours)  # type: ignore[arg-type]
    if method == "dpt":
        return ReferenceDPT(ours)  # type: ignore[arg-type]
    return ReferenceSwap(ours, MODULES[method], sequence_length(method, ours.cfg))


def shipped_batches(
    method: str, fam: str = "DarkRoom-v0", batch_size: int | None = None, tiny: bool = False
) -> tuple[Any, Any, Any, list, Any]:
    """The shipped config of ``method`` for family ``fam`` and 8 batches drawn by its own sampler
    from a small dataset of the family, of its kind: ``(module, model config, train config,
    batches, dataset)``; ``batch_size`` overrides the config's; ``tiny``: smoke data and 2
    batches."""
    from icrl_bench import data

    raw = read_config(method, fam)
    module = MODULES[method]
    cfg: Any = build(module.Config, raw["model"], "model")
    tcfg = build(TrainConfig, raw["train"], "train")
    variant, scale = ("uniform-rollin", "small") if method == "dpt" else ("histories", "smoke")
    if family(fam).scale(scale) is None:  # families without the grids' "small" scale
        scale = "smoke"
    ds = data.load(data.generate(fam, variant, "smoke" if tiny else scale, seed=0))
    sample = module.make_sampler(cfg, ds, batch_size or tcfg.batch_size, torch.device("cpu"))
    rng = np.random.default_rng(0)
    return module, cfg, tcfg, [sample(rng) for _ in range(2 if tiny else 8)], ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="DarkRoom-v0", help="e.g. PointRobot-v0")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["ad", "dpt"], choices=list(MODULES))
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("ICRL_BENCH_HOME", tempfile.mkdtemp())
    batch_size, repeats = (2, 1) if args.tiny else (None, 3)
    steps = 1 if args.tiny else args.steps

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for method in args.methods:
        module, cfg, tcfg, batches, ds = shipped_batches(method, args.family, batch_size, args.tiny)
        tcfg.batch_size = batch_size or tcfg.batch_size
        torch.manual_seed(0)
        obs_info, act_info = spaces_of(args.family)
        ours = module.RECIPE.model(cfg, obs_info, act_info)
        standardise_observations(ours, ds)  # continuous observations: as training does
        ref: Any = reference_for(method, ours)
        # the DPT reference borrows ours' embeddings (``model``) but not its core
        ref_params = [p for n, p in ref.named_parameters() if not n.startswith("model.core.")]
        if method in ("dt", "meta-dt"):  # a copy with its own core: every parameter trains
            ref_params = list(ref.parameters())
        transitions = tcfg.batch_size * cfg.context
        r_ours = rate(
            list(ours.parameters()),
            lambda b, m=ours, f=module.loss_fn: f(m, b)[0],  # type: ignore[misc]
            batches,
            steps,
            tcfg.amp,
            transitions,
            repeats,
        )
        r_ref = rate(ref_params, ref.loss, batches, steps, False, transitions, repeats)
        print(
            f"{method} ({args.family} config: d_model {cfg.d_model}, {cfg.n_layers} layers, "
            f"{cfg.n_heads} heads, dropout {cfg.dropout}, batch {tcfg.batch_size} x "
            f"{cfg.context} transitions, amp {tcfg.amp})"
        )
        print(f"  ours:                   {r_ours:10,.0f} transitions/s")
        print(f"  nn.TransformerEncoder:  {r_ref:10,.0f} transitions/s (fp32)")
        print(f"  ratio: {r_ours / r_ref:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
