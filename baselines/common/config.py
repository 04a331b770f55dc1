"""Configs: the shared config classes, per-family YAML files, ``smoke`` overrides and
``--set key=value`` on top.

Every baseline's ``Config`` subclasses :class:`ModelConfig` (the fields all of them have) and
adds only its own fields; :class:`TrainConfig` holds the optimisation settings all share. A
config class validates itself when built: numeric fields against :data:`RANGES` (by name), string
fields against the choices its classes declare in ``CHOICES``, then its own cross-field
``check``.

A config file ``baselines/configs/<method>/<Family>.yaml`` has the sections ``model`` (fields of
the baseline's ``Config``), ``train`` (fields of :class:`TrainConfig`), ``smoke`` (overrides of
both, for tests and the quickstart) and ``source`` (where the numbers come from). Keys are
checked against the dataclasses: an unknown key or a value of the wrong type is a one-line
:class:`ConfigError`.

This module does not import torch: the CLI reads configs before any model exists.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from icrl_bench.errors import IcrlBenchError
from icrl_bench.values import COUNT, NON_NEGATIVE_INT, SEED, UNIT, Range, ValueRangeError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

T = TypeVar("T")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(IcrlBenchError):
    """A config file or override is invalid."""


_POSITIVE = Range(0.0, low_open=True)
_NON_NEGATIVE = Range(0.0)
_FRACTION = Range(0.0, 1.0, high_open=True)
#: what every numeric field of the baselines' ``Config`` and of ``TrainConfig`` accepts, by field
#: name (a field means the same in every baseline); a test checks that every numeric field of
#: every config class is listed
RANGES: dict[str, Range] = {
    # training
    "steps": Range(1, 10**9, integer=True),
    "batch_size": Range(1, 2**16, integer=True),
    "lr": Range(0.0, 10.0, low_open=True),
    "min_lr_ratio": UNIT,
    "weight_decay": _NON_NEGATIVE,
    "warmup_steps": NON_NEGATIVE_INT,
    "grad_clip": _POSITIVE,
    "checkpoint_every": COUNT,
    "log_every": COUNT,
    "seed": SEED,
    "betas": _FRACTION,  # each of the two
    # model
    "context": Range(1, 2**16, integer=True),
    "context_episodes": COUNT,
    "d_model": Range(1, 2**14, integer=True),
    "n_layers": Range(1, 256, integer=True),
    "n_heads": Range(1, 256, integer=True),
    "dropout": _FRACTION,
    "label_smoothing": _FRACTION,
    "prompt_dropout": UNIT,
    "temperature": _POSITIVE,
    "episode_noise": _NON_NEGATIVE,
    "ema_tau": Range(0.0, 1.0, low_open=True),
    "expert_hidden": NON_NEGATIVE_INT,
    "history": COUNT,
    "latent": COUNT,
    "moe_layers": NON_NEGATIVE_INT,
    "prompt_length": COUNT,
    "query_every": COUNT,
    "return_scale": _POSITIVE,
    "target_return": Range(),
    "token_experts": COUNT,
    "token_top_k": COUNT,
    "task_experts": COUNT,
    "task_top_k": COUNT,
    "wm_hidden": COUNT,
    "wm_weight": _NON_NEGATIVE,
    "balance_weight": _NON_NEGATIVE,
    "contrastive_weight": _NON_NEGATIVE,
}


def config_path(method: str, family_name: str) -> Path:
    """The shipped config of ``method`` for a family."""
    return CONFIG_DIR / method / f"{family_name}.yaml"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-3", "model.d_model=32"]`` -> nested overrides (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=1e-3")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
        node = out
        *parents, last = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def read_config(
    method: str,
    family_name: str,
    file: str | os.PathLike[str] | None = None,
    sets: list[str] | None = None,
    smoke: bool = False,
) -> dict[str, Any]:
    """The raw config: the file (default the shipped one), then ``smoke``, then ``sets``.

    A family without a shipped config (one just added to the registry) trains with the
    method's dataclass defaults; it has no smoke budget until a config gives it one.
    """
    path = Path(file) if file else config_path(method, family_name)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        if file or smoke:
            why = "--smoke needs a config with a smoke section" if smoke and not file else ""
            raise ConfigError(f"no config {path} ({why or f'no {method} config'})") from None
        raw = {"source": f"the defaults of {method} (no shipped config for {family_name})"}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping")
    unknown = set(raw) - {"model", "train", "smoke", "source"}
    if unknown:
        raise ConfigError(f"{path}: unknown section {sorted(unknown)[0]!r}")
    cfg = {"model": raw.get("model") or {}, "train": raw.get("train") or {}}
    if smoke:
        cfg = _merge(cfg, raw.get("smoke") or {})
    cfg = _merge(cfg, parse_sets(sets or []))
    cfg["source"] = raw.get("source", "")
    return cfg


def build(cls: type[T], values: dict[str, Any], section: str) -> T:
    """Instantiate dataclass ``cls`` from ``values``, checking names and types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown config key '{section}.{key}'")
        default = getattr(defaults, key)
        kwargs[key] = _in_range(f"{section}.{key}", _coerce(f"{section}.{key}", value, default))
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{section}: {exc}") from None


def _in_range(name: str, value: Any) -> Any:
    """``value`` checked against :data:`RANGES` (by the field's own name)."""
    rng = RANGES.get(name.rsplit(".", 1)[-1])
    if rng is None or isinstance(value, bool | str):
        return value
    try:
        if isinstance(value, tuple):
            return tuple(rng.check(f"config key '{name}' entry", v) for v in value)
        return rng.check(f"config key '{name}'", value)
    except ValueRangeError as exc:
        raise ConfigError(str(exc)) from None


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{name}' must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{name}' must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key '{name}' must be a number, got {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(default):
            raise ConfigError(f"config key '{name}' must be a list of {len(default)} numbers")
        return tuple(float(v) for v in value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"config key '{name}' must be a string, got {value!r}")
    return value


def as_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as plain JSON-able data (tuples become lists)."""
    out = dataclasses.asdict(obj)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


#: the action heads (:mod:`baselines.common.heads`)
ACTION_HEADS = ("auto", "categorical", "mse", "gaussian")
#: how an agent turns the head's output into an action: its mode, or a sample
ACTION_SELECTIONS = ("argmax", "sample")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise a one-line ``ValueError`` unless ``value`` is one of ``choices``."""
    if value in choices:
        return
    if len(choices) == 2:
        allowed = " or ".join(repr(c) for c in choices)
    else:
        allowed = f"one of {', '.join(choices)}"
    raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_range(name: str, value: Any) -> None:
    """Raise a one-line ``ValueError`` unless a numeric field's value is inside its declared
    :data:`RANGES` entry (each entry of a tuple; fields without one, booleans and strings
    pass)."""
    rng = RANGES.get(name)
    if rng is None or isinstance(value, bool | str):
        return
    for v in value if isinstance(value, tuple) else (value,):
        rng.check(name, v)


class Validated:
    """Validation shared by every config dataclass, run when one is built.

    Numeric fields are checked against :data:`RANGES`, string fields against the ``CHOICES``
    that the class and its bases declare (each class declares only its own), then ``check``
    runs the cross-field rules (subclasses extend it, calling ``super().check()``). A bad value
    is a one-line ``ValueError``; :func:`build` turns it into a :class:`ConfigError`.
    """

    #: allowed values of string fields, by field name
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __post_init__(self) -> None:
        choices: dict[str, tuple[str, ...]] = {}
        for cls in reversed(type(self).__mro__):
            choices.update(vars(cls).get("CHOICES", {}))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            check_range(f.name, value)
            if f.name in choices:
                check_choice(f.name, value, choices[f.name])
        self.check()

    def check(self) -> None:
        """Cross-field rules (none here)."""


@dataclass
class ModelConfig(Validated):
    """The model fields every baseline has; each baseline's ``Config`` subclasses it, adds its
    own fields and restates the defaults it takes from its paper.

    Attributes:
        context: the model's window, in transitions (steps for the Decision Transformers).
        d_model: token width.
        n_layers: transformer blocks.
        n_heads: attention heads.
        dropout: dropout in attention, residual branches and the feed-forward block.
        action_head: ``"auto"`` (categorical, or ``"mse"`` for continuous actions),
            ``"mse"`` or ``"gaussian"`` (see :mod:`baselines.common.heads`).
        action_selection: ``"argmax"`` (the head's mode) or ``"sample"``.
        device: ``"auto"`` (CUDA, MPS, CPU) or a device name.
    """

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "action_head": ACTION_HEADS,
        "action_selection": ACTION_SELECTIONS,
    }

    context: int = 20
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 1
    dropout: float = 0.1
    action_head: str = "auto"
    action_selection: str = "argmax"
    device: str = "auto"


@dataclass
class HistoryModelConfig(ModelConfig):
    """The fields of the models that act from a context of past transitions (AD, DPT and their
    T2MIR variants).

    Attributes:
        temperature: softmax temperature of ``action_selection="sample"``.
        obs_coords: embed a grid cell's ``(x, y)`` (see :mod:`baselines.common.embed`).
        obs_table: also give every cell its own learned vector (``False`` with ``obs_coords``:
            a goal cell never seen in training is embedded like any other cell).
    """

    n_layers: int = 4
    temperature: float = 1.0
    obs_coords: bool = False
    obs_table: bool = True


#: where a Decision Transformer's evaluation target return comes from
TARGETS = ("data-max", "task-median", "fixed")


@dataclass
class ReturnModelConfig(ModelConfig):
    """The fields of the return-conditioned models (DT and Meta-DT).

    Attributes:
        return_scale: returns-to-go are divided by this (Meta-DT: 10 on PointRobot, 500 on
            HalfCheetahVel).
        target: ``"data-max"``, the best episode return in the training data;
            ``"task-median"``, the median over the training tasks of each task's best episode
            return (the best a typical task's data reaches: a test-free stand-in for Meta-DT's
            code, which starts each test task from the best return in that task's own data); or
            ``"fixed"``, ``target_return``.
        target_return: the target return when ``target`` is ``"fixed"`` (raw units).
    """

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {"target": TARGETS}

    return_scale: float = 1.0
    target: str = "data-max"
    target_return: float = 0.0


@dataclass
class TrainConfig(Validated):
    """Optimisation settings shared by every baseline.

    Attributes:
        steps: gradient updates.
        batch_size: sequences per update.
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases, norms and embeddings).
        betas: AdamW betas.
        warmup_steps: linear warmup from 0 to ``lr``; then cosine decay to ``lr * min_lr_ratio``.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        grad_clip: clip the global gradient norm to this (0 disables).
        amp: bfloat16 autocast on CUDA (ignored elsewhere).
        seed: seeds Python, NumPy, torch and the batch sampler.
        checkpoint_every: save the run state every this many steps (and at the end).
        log_every: record the mean loss every this many steps.
    """

    steps: int = 10_000
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 500
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    amp: bool = False
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
