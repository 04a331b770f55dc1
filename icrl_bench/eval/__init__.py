"""Evaluation: the agent interface, versioned protocols, the runner and metrics."""

from icrl_bench.eval.agents import Agent, reference_agent
from icrl_bench.eval.protocols import PROTOCOLS, protocol, setting
from icrl_bench.eval.runner import EvalResult, evaluate

__all__ = ["PROTOCOLS", "Agent", "EvalResult", "evaluate", "protocol", "reference_agent", "setting"]
