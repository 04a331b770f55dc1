"""icrl-bench: a Gymnasium benchmark suite for in-context RL and offline meta-RL.

Importing this package registers every task family with Gymnasium under ``icrl_bench/<Family>``.
"""

from icrl_bench.errors import IcrlBenchError
from icrl_bench.eval import evaluate
from icrl_bench.provenance import __version__
from icrl_bench.registry import FAMILIES, family, reference_returns, register_all, tasks
from icrl_bench.tasks import Task, TaskDistribution

register_all()

__all__ = [
    "FAMILIES",
    "IcrlBenchError",
    "Task",
    "TaskDistribution",
    "__version__",
    "evaluate",
    "family",
    "reference_returns",
    "register_all",
    "tasks",
]
