"""Source algorithms that produce learning histories, vectorised over tasks and histories.

A *learning history* is the complete sequence of episodes that one learner produces on one task,
from its first episode to its last. :func:`collect` runs ``len(tasks) * histories`` learners at
once, one per env of a batched env, episode by episode in lockstep, and returns every transition
in the order task, history, episode, step. The only Python loop is over time steps; every step
acts and learns for all envs with NumPy.

Learners may read the env's privileged state through the core (the tabular learner needs
Key-to-Door's key flag as its memory; the oracle needs the task). The stored observations are
always what the env emits.

The learners are in :mod:`.learners` on the shared parts of :mod:`.base`; :mod:`.collect` runs
them. SAC, the locomotion source, is :mod:`icrl_bench.data.sac`.
"""

from icrl_bench.data.sources.base import HISTORY_KINDS, Context, Learner, Step, make_context
from icrl_bench.data.sources.collect import LEARNERS, Collected, MixedLearner, collect
from icrl_bench.data.sources.learners import (
    CEMLearner,
    DirichletMixLearner,
    NoisyOracle,
    OracleLearner,
    QLearner,
    RandomLearner,
    ThompsonLearner,
    UCBLearner,
    UniformStateLearner,
)

__all__ = [
    "HISTORY_KINDS",
    "LEARNERS",
    "CEMLearner",
    "Collected",
    "Context",
    "DirichletMixLearner",
    "Learner",
    "MixedLearner",
    "NoisyOracle",
    "OracleLearner",
    "QLearner",
    "RandomLearner",
    "Step",
    "ThompsonLearner",
    "UCBLearner",
    "UniformStateLearner",
    "collect",
    "make_context",
]
