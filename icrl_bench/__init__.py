"""icrl-bench: a Gymnasium benchmark suite for in-context RL and offline meta-RL.

Importing this package registers every task family with Gymnasium under ``icrl_bench/<Family>``.
"""

from icrl_bench.registry import FAMILIES, family, reference_returns, register_all, tasks
from icrl_bench.tasks import Task, TaskDistribution

__version__ = "0.1.0"

register_all()

__all__ = [
    "FAMILIES",
    "Task",
    "TaskDistribution",
    "__version__",
    "family",
    "reference_returns",
    "register_all",
    "tasks",
]
