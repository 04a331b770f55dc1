"""icrl-bench: a Gymnasium benchmark suite for in-context RL and offline meta-RL.

Importing this package registers every task family with Gymnasium under ``icrl_bench/<Family>``.
"""

from icrl_bench.errors import IcrlBenchError
from icrl_bench.registry import FAMILIES, family, reference_returns, register_all, tasks
from icrl_bench.tasks import Task, TaskDistribution

__version__ = "0.1.0"

register_all()

from icrl_bench.eval import evaluate  # noqa: E402  (needs the registry above)

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
