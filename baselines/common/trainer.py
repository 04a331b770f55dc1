"""The trainer every baseline uses.

AdamW, linear warmup then cosine decay, gradient clipping, optional AMP on CUDA, seeding of every
random stream, a progress bar with the loss and throughput, and checkpoint/resume: the run's
state (weights, optimizer, scheduler, step, every RNG) is saved every ``checkpoint_every`` steps
and at the end, and a rerun into the same directory continues from it. A resumed run produces
the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from baselines.common.checkpoint import atomic_torch_save, load_state
from baselines.common.config import TrainConfig

#: a batch: tensors by name, already on the device
Batch = dict[str, Tensor]
#: ``(model, batch) -> (loss, logged scalars)``
LossFn = Callable[[nn.Module, Batch], tuple[Tensor, Mapping[str, float]]]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's global and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak learning rate at ``step``: linear warmup, then cosine."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            plain = isinstance(module, nn.Linear) and name == "weight"
            (decay if plain else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def train(
    model: nn.Module,
    sample: Callable[[np.random.Generator], Batch],
    loss_fn: LossFn,
    cfg: TrainConfig,
    out_dir: Path,
    progress: bool = True,
    tokens_per_batch: int | None = None,
    on_save: Callable[[int, nn.Module], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` and keep its state in ``out_dir``; resume if a run state is there.

    Args:
        model: the module (already on its device).
        sample: draws one batch from the given generator.
        loss_fn: computes the loss of a batch.
        cfg: optimisation settings.
        out_dir: holds ``model.pt`` (weights), ``train_state.pt`` and ``log.jsonl``.
        progress: show a progress bar.
        tokens_per_batch: transitions per batch, for the throughput shown.
        on_save: called with ``(step, model)`` after every save (the model is left in
            training mode afterwards), e.g. to evaluate it while it trains.

    Returns:
        The logged records (``step``, ``loss`` and the loss function's scalars), all of them
        including those of earlier, resumed parts of the run.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW(
        _param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1])
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
    )
    step, log = 0, []
    state_path = out_dir / "train_state.pt"
    if state_path.exists():
        state = load_state(state_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, log = int(state["step"]), list(state["log"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        random.setstate(_tuple(state["python_rng"]))

    def save() -> None:
        atomic_torch_save(model.state_dict(), out_dir / "model.pt")
        atomic_torch_save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "step": step,
                "log": log,
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "python_rng": random.getstate(),
            },
            state_path,
        )
        (out_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))

    use_amp = cfg.amp and device.type == "cuda"
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train", leave=False)
    window: list[float] = []
    extras: dict[str, list[float]] = {}
    start = time.perf_counter()
    done_here = 0
    model.train()
    while step < cfg.steps:
        batch = sample(rng)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, scalars = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        step += 1
        done_here += 1
        window.append(float(loss.detach()))
        for k, v in scalars.items():
            extras.setdefault(k, []).append(float(v))
        if step % cfg.log_every == 0 or step == cfg.steps:
            record = {"step": step, "loss": float(np.mean(window)), "lr": sched.get_last_lr()[0]}
            record.update({k: float(np.mean(v)) for k, v in extras.items()})
            log.append(record)
            window, extras = [], {}
            rate = done_here * (tokens_per_batch or cfg.batch_size) / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{record['loss']:.4f}", per_s=f"{rate:,.0f}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save()
            if on_save is not None:
                on_save(step, model)
                model.train()
    bar.close()
    if done_here == 0 and not (out_dir / "model.pt").exists():
        save()
    model.eval()
    return log


def _tuple(x: Any) -> Any:
    """Python's RNG state comes back from storage with lists where it had tuples."""
    return tuple(_tuple(v) for v in x) if isinstance(x, list | tuple) else x
