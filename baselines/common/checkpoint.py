"""Checkpoint directories: weights, the resolved config, and loading an agent back.

A checkpoint directory holds:

* ``checkpoint.json``: ``format`` (:data:`FORMAT`), ``method``, ``version``, the env id, the
  training dataset's id and sha256, the observation and action spaces, the fully resolved
  config (its ``train.seed`` is the run's training seed), the commit it was trained at
  (``git_sha``; absent from checkpoints written before it was recorded), and how far training
  got: ``step`` (the updates in the saved weights) of ``steps`` (the config's), rewritten at
  every save. A run with ``step < steps`` (killed, or still training) is partial: evaluation
  refuses it unless asked for a partial run;
* ``model.pt``: the weights (a state dict; loaded with ``torch.load(weights_only=True)``);
* ``train_state.pt`` and ``log.jsonl``: the trainer's resumable state and loss log.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from baselines.methods import METHODS, method
from icrl_bench.errors import IcrlBenchError
from icrl_bench.eval.results import config_sha256, strip_seed
from icrl_bench.registry import family

#: the checkpoint format this code writes and reads
FORMAT = "icrl-bench-checkpoint-1"


class CheckpointError(IcrlBenchError):
    """A checkpoint directory is missing, corrupted or not one of ours."""


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` with a one-line error on failure."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a valid weights file ({first[:160]})") from None


def upgrade_state(state: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """Read a checkpoint written before continuous action heads and observation statistics.

    Such checkpoints hold the action head as a bare linear layer (``head.weight``) and no
    standardisation buffers; the head's weights move to ``head.linear`` and the missing buffers
    keep the model's identity values (which is what those models were trained with).
    """
    expected = model.state_dict()
    out = dict(state)
    for name in ("weight", "bias"):
        if f"head.{name}" in out and f"head.linear.{name}" in expected:
            out[f"head.linear.{name}"] = out.pop(f"head.{name}")
    for key, value in expected.items():
        if key not in out and key.rsplit(".", 1)[-1] in ("mean", "std"):
            out[key] = value
    return out


def load_weights(model: torch.nn.Module, ckpt_dir: Path) -> None:
    """Load ``model.pt`` into ``model``; a file that does not fit the model is a clear error."""
    state = load_state(ckpt_dir / "model.pt")
    if isinstance(state, dict):
        state = upgrade_state(state, model)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{ckpt_dir}/model.pt does not fit the model ({first[:160]})"
        ) from None


def write_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    """Write ``checkpoint.json`` atomically (``format`` is added): a kill mid-write leaves the
    previous one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, **meta}, indent=2, sort_keys=True) + "\n"
    tmp = out_dir / f".checkpoint.json.{os.getpid()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, out_dir / "checkpoint.json")


def training_progress(ckpt_dir: Path, meta: dict[str, Any]) -> tuple[int, int]:
    """``(step, steps)``: the updates in a checkpoint's weights and the config's total. A
    checkpoint written before ``step`` was recorded is read from its ``train_state.pt``."""
    steps = int((meta.get("config") or {}).get("train", {}).get("steps", 0))
    if "step" in meta:
        return int(meta["step"]), int(meta.get("steps", steps))
    state = ckpt_dir / "train_state.pt"
    if state.is_file():
        return int(load_state(state)["step"]), steps
    return steps, steps  # no trainer state at all: nothing says it stopped early


def read_meta(ckpt_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``checkpoint.json``.

    Raises:
        CheckpointError: not a directory, no or unreadable metadata, or a foreign format.
    """
    path = Path(ckpt_dir)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint directory")
    try:
        meta = json.loads((path / "checkpoint.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: no checkpoint.json (not an icrl-bench checkpoint)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}/checkpoint.json: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: format {found!r} is not {FORMAT!r}")
    if meta.get("method") not in METHODS:
        raise CheckpointError(f"{path}: unknown method {meta.get('method')!r}")
    return meta


@dataclass
class LoadedAgent:
    """What ``icrl-bench evaluate --agent CHECKPOINT`` needs.

    Attributes:
        agent: the batched agent.
        method: its leaderboard name.
        version: the method's version.
        config: the resolved config (stored in the results file with its hash).
        dataset: ``{"id", "sha256"}`` of the training dataset.
        train_seed: the run's training seed (``config["train"]["seed"]``).
        git_sha: the commit it was trained at, or ``None`` where not recorded.
        step: the updates in its weights.
        steps: the updates its config asks for (``step < steps``: a partial run).
    """

    agent: Any
    method: str
    version: str
    config: dict[str, Any]
    dataset: dict[str, str] | None
    train_seed: int = 0
    git_sha: str | None = None
    step: int = 0
    steps: int = 0

    @property
    def partial(self) -> bool:
        """Whether training stopped before the config's last update."""
        return self.step < self.steps


def load_agent(
    ckpt_dir: str | os.PathLike[str], env_id: str, allow_partial: bool = False
) -> LoadedAgent:
    """Load the agent of a checkpoint directory for evaluation on ``env_id``.

    Args:
        allow_partial: accept a run whose training stopped early (see :func:`training_progress`).

    Raises:
        CheckpointError: the checkpoint is unusable, was trained on another family, or (without
            ``allow_partial``) its training did not finish.
    """
    meta = read_meta(ckpt_dir)
    step, steps = training_progress(Path(ckpt_dir), meta)
    if step < steps and not allow_partial:
        raise CheckpointError(
            f"{ckpt_dir}: training stopped at update {step:,} of {steps:,}; finish it (rerun "
            "its `icrl-bench train` command with the same --out) or evaluate it as a partial "
            "run with --allow-partial"
        )
    if family(env_id).env_id != meta["env_id"]:
        raise CheckpointError(
            f"{ckpt_dir}: trained on {meta['env_id']}, cannot evaluate on {family(env_id).env_id}"
        )
    agent = method(meta["method"]).load_agent(Path(ckpt_dir), meta)
    seed = (meta["config"].get("train") or {}).get("seed", 0)
    return LoadedAgent(
        agent=agent,
        method=meta["method"],
        version=str(meta["version"]),
        config=meta["config"],
        dataset=meta.get("dataset"),
        train_seed=int(seed),
        git_sha=meta.get("git_sha"),
        step=step,
        steps=steps,
    )


def load_runs(ckpt_dirs: list[str], env_id: str, allow_partial: bool = False) -> list[LoadedAgent]:
    """Load the checkpoints of independent training runs of one method and config, for one
    multi-run result.

    Raises:
        CheckpointError: naming the first checkpoint whose method, version, config (other than
            its training seed) or training dataset differs from the first one's, or whose
            training seed repeats an earlier one's.
    """
    loaded = [load_agent(d, env_id, allow_partial) for d in ckpt_dirs]
    first = loaded[0]
    seen = {first.train_seed: ckpt_dirs[0]}
    for path, run in zip(ckpt_dirs[1:], loaded[1:], strict=True):
        differs = None
        if (run.method, run.version) != (first.method, first.version):
            differs = f"method {run.method} v{run.version}, not {first.method} v{first.version}"
        elif config_sha256(strip_seed(run.config)) != config_sha256(strip_seed(first.config)):
            differs = "a config that differs in more than its training seed"
        elif run.dataset != first.dataset:
            found, want = (d["id"] if d else None for d in (run.dataset, first.dataset))
            differs = f"dataset {found}, not {want}"
        if differs:
            raise CheckpointError(
                f"{path}: {differs} of {ckpt_dirs[0]}: the runs of one result share one method, "
                "config and dataset"
            )
        if run.train_seed in seen:
            raise CheckpointError(
                f"{path}: training seed {run.train_seed} repeats {seen[run.train_seed]}'s: the "
                "runs of one result are independent training runs, one per seed"
            )
        seen[run.train_seed] = path
    return loaded
