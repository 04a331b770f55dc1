"""Datasets of learning histories, generated locally from versioned recipes.

``generate(env_id, variant, scale, seed)`` writes a dataset into the store under
``$ICRL_BENCH_HOME/datasets`` and returns its id; ``load(id)`` opens it memory-mapped.
"""

from icrl_bench.data.catalogue import VARIANTS
from icrl_bench.data.dataset import SLICES, Dataset, load
from icrl_bench.data.lhf import lhf_weights
from icrl_bench.data.recipes import generate, plan
from icrl_bench.data.store import DatasetError, list_datasets

__all__ = [
    "SLICES",
    "VARIANTS",
    "Dataset",
    "DatasetError",
    "generate",
    "lhf_weights",
    "list_datasets",
    "load",
    "plan",
]
