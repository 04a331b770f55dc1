"""Tasks and task distributions.

A :class:`Task` is a frozen, hashable, JSON-serialisable value that fixes everything that differs
between the tasks of one family (a goal cell, the arm means of a bandit, ...). It records the
family it belongs to, so that an env can refuse a task from another family.

:func:`icrl_bench.tasks` returns a :class:`TaskDistribution` with the family's fixed ``train`` and
``test`` splits and a ``sample`` method that draws fresh tasks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from icrl_bench.errors import InvalidTaskError

_TASK_TYPES: dict[str, type[Task]] = {}


def _tupleize(value: Any) -> Any:
    """Turn nested lists/arrays into nested tuples so that tasks stay hashable."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return tuple(_tupleize(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass(frozen=True)
class Task:
    """Base class of all tasks.

    Attributes:
        family: the short id of the family the task belongs to, e.g. ``"DarkRoom-v0"``.
    """

    family: str

    kind: ClassVar[str] = "Task"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__
        _TASK_TYPES[cls.__name__] = cls

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _tupleize(getattr(self, f.name)))
        if not isinstance(self.family, str) or not self.family:
            raise InvalidTaskError(f"task family must be a non-empty string, got {self.family!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; :meth:`Task.from_dict` inverts it."""
        return {"kind": self.kind, **asdict(self)}

    def to_json(self) -> str:
        """Return the task as a compact JSON string."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Task:
        """Rebuild a task from :meth:`to_dict` output.

        Raises:
            InvalidTaskError: if the dict names no known task kind or has wrong fields.
        """
        if not isinstance(data, Mapping):
            raise InvalidTaskError(f"a task must be a Task or a dict, got {type(data).__name__}")
        payload = dict(data)
        kind = payload.pop("kind", None)
        cls = _TASK_TYPES.get(str(kind))
        if cls is None:
            raise InvalidTaskError(f"unknown task kind {kind!r}; known: {sorted(_TASK_TYPES)}")
        names = {f.name for f in fields(cls)}
        if set(payload) != names:
            raise InvalidTaskError(f"{kind} needs fields {sorted(names)}, got {sorted(payload)}")
        return cls(**payload)

    @staticmethod
    def from_json(text: str) -> Task:
        """Rebuild a task from :meth:`to_json` output."""
        return Task.from_dict(json.loads(text))


def _check_cell(name: str, cell: Any) -> None:
    if (
        not isinstance(cell, tuple)
        or len(cell) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in cell)
    ):
        raise InvalidTaskError(f"{name} must be a pair of ints (x, y), got {cell!r}")


@dataclass(frozen=True)
class BanditTask(Task):
    """A multi-armed bandit: one mean reward per arm."""

    means: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.means) == 0 or not all(np.isfinite(m) for m in self.means):
            raise InvalidTaskError(
                f"means must be a non-empty tuple of finite floats: {self.means}"
            )
        object.__setattr__(self, "means", tuple(float(m) for m in self.means))


@dataclass(frozen=True)
class LinearBanditTask(Task):
    """A linear bandit: the mean reward of arm ``k`` is ``features[k] @ theta``."""

    features: tuple[tuple[float, ...], ...] = ()
    theta: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        feats = np.asarray(self.features, dtype=np.float64)
        theta = np.asarray(self.theta, dtype=np.float64)
        if feats.ndim != 2 or theta.ndim != 1 or feats.shape[1] != theta.shape[0]:
            raise InvalidTaskError(
                f"features must be [arms, dim] and theta [dim]; got {feats.shape} and {theta.shape}"
            )
        if not (np.isfinite(feats).all() and np.isfinite(theta).all()):
            raise InvalidTaskError("features and theta must be finite")
        object.__setattr__(self, "features", _tupleize(feats))
        object.__setattr__(self, "theta", _tupleize(theta))


@dataclass(frozen=True)
class GoalTask(Task):
    """A grid task defined by a goal cell ``(x, y)``."""

    goal: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_cell("goal", self.goal)


@dataclass(frozen=True)
class PermutationTask(Task):
    """A grid task whose action ``a`` performs the move ``permutation[a]``."""

    permutation: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if sorted(self.permutation) != list(range(len(self.permutation))) or not all(
            isinstance(v, int) for v in self.permutation
        ):
            raise InvalidTaskError(
                f"permutation must be a permutation of 0..n-1: {self.permutation}"
            )


@dataclass(frozen=True)
class KeyDoorTask(Task):
    """A Key-to-Door layout: the key cell and the door cell."""

    key: tuple[int, int] = (0, 0)
    door: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_cell("key", self.key)
        _check_cell("door", self.door)


def _check_floats(name: str, values: Any, size: int | None = None) -> None:
    if (
        not isinstance(values, tuple)
        or (size is not None and len(values) != size)
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
            for v in values
        )
    ):
        want = f"{size} finite numbers" if size else "finite numbers"
        raise InvalidTaskError(f"{name} must be {want}, got {values!r}")


@dataclass(frozen=True)
class PointGoalTask(Task):
    """A continuous goal position ``(x, y)`` (PointRobot)."""

    goal: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_floats("goal", self.goal, 2)
        object.__setattr__(self, "goal", tuple(float(v) for v in self.goal))


def split_hash(tasks: Sequence[Task]) -> str:
    """Return the sha256 of a split, for pinning splits in tests and in results files."""
    payload = "\n".join(t.to_json() for t in tasks)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class TaskDistribution:
    """The task distribution of one family.

    Attributes:
        env_id: the registered env id, e.g. ``"icrl_bench/DarkRoom-v0"``.
        train: the fixed training split.
        test: the fixed test split (every protocol evaluates on it).
        split_source: where the split comes from (a seed or a published task set).
    """

    env_id: str
    train: tuple[Task, ...]
    test: tuple[Task, ...]
    split_source: str
    _sampler: Callable[[int, np.random.Generator], tuple[Task, ...]] = field(repr=False)
    _validator: Callable[[Task], object] = field(repr=False)

    @property
    def family(self) -> str:
        """The short family id, e.g. ``"DarkRoom-v0"``."""
        return self.env_id.split("/", 1)[-1]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Draw ``n`` fresh tasks from the family's generative distribution.

        Args:
            n: how many tasks to draw.
            rng: the generator to draw from (use a stream of its own, not the env's).
        """
        if not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        return self._sampler(int(n), rng)

    def validate(self, task: Task | Mapping[str, Any]) -> Task:
        """Return ``task`` as a :class:`Task` if it belongs to this family, else raise.

        Raises:
            InvalidTaskError: for a task of another family or with out-of-range parameters.
        """
        if not isinstance(task, Task):
            task = Task.from_dict(task)
        if task.family != self.family:
            raise InvalidTaskError(f"task belongs to family {task.family!r}, not {self.family!r}")
        self._validator(task)
        return task

    def split_hashes(self) -> dict[str, str]:
        """sha256 of each split, as pinned by the tests."""
        return {"train": split_hash(self.train), "test": split_hash(self.test)}


#: family name -> a function building its task distribution; filled by the registry on import
_DISTRIBUTIONS: dict[str, Callable[[], TaskDistribution]] = {}


def provide_distribution(family: str, build: Callable[[], TaskDistribution]) -> None:
    """Declare how a family's task distribution is built (the registry does, for each family).

    The envs draw their default tasks through :func:`train_split` and so never import the
    registry, which sits above them.
    """
    _DISTRIBUTIONS[family] = build


def train_split(family: str) -> tuple[Task, ...]:
    """The train split of a family whose distribution the registry has provided.

    Raises:
        KeyError: for a family nobody provided (its env was built outside the registry).
    """
    return _DISTRIBUTIONS[family]().train
