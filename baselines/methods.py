"""The registry of baselines: the one list that the CLI, checkpoints and suites read.

Each :class:`MethodSpec` names a baseline and where its :class:`~baselines.common.pipeline.Recipe`
lives, as a module path and an attribute (like a Gymnasium entry point), so that reading the list
imports neither torch nor any baseline: a baseline's module is imported the first time it trains
or loads.

Add a baseline by writing its module (a ``Config``, model, loss, sampler, agent and a ``RECIPE``
that ties them together) and one :class:`MethodSpec` line in :data:`METHODS`.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icrl_bench.errors import IcrlBenchError

if TYPE_CHECKING:
    from baselines.common.pipeline import Recipe


@dataclass(frozen=True)
class MethodSpec:
    """One baseline: its leaderboard name and where its recipe is.

    Attributes:
        name: the method's name in checkpoints, results and on the command line.
        module: the module that defines the recipe (imported on first use).
        recipe: the recipe's attribute name in ``module``.
        needs_labels: training needs the dataset's optimal-action labels (DPT's target).
    """

    name: str
    module: str
    recipe: str = "RECIPE"
    needs_labels: bool = False

    def load_recipe(self) -> Recipe:
        """Import the baseline's module and return its recipe."""
        recipe: Recipe = getattr(importlib.import_module(self.module), self.recipe)
        return recipe

    def train(
        self,
        env_id: str,
        dataset_id: str,
        raw: dict[str, Any],
        out_dir: str | Path,
        progress: bool = True,
    ) -> Path:
        """Train the baseline on a dataset; returns the checkpoint directory.

        Args:
            env_id: the family it is trained for.
            dataset_id: the training dataset (of that family).
            raw: the raw config (see :func:`baselines.common.config.read_config`).
            out_dir: the checkpoint directory (an unfinished run there is resumed).
            progress: show a progress bar.
        """
        return self.load_recipe().fit(self.name, env_id, dataset_id, raw, out_dir, progress)

    def load_agent(self, ckpt_dir: Path, meta: dict[str, Any]) -> Any:
        """The agent of a checkpoint directory of this method (``meta``: its
        ``checkpoint.json``)."""
        return self.load_recipe().load_agent(ckpt_dir, meta)


#: every baseline, in the order the CLI lists them
METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("ad", "baselines.ad"),
        MethodSpec("dpt", "baselines.dpt", needs_labels=True),
        MethodSpec("dt", "baselines.dt"),
        MethodSpec("meta-dt", "baselines.meta_dt"),
        MethodSpec("t2mir-ad", "baselines.t2mir", recipe="AD_RECIPE"),
        MethodSpec("t2mir-dpt", "baselines.t2mir", recipe="DPT_RECIPE", needs_labels=True),
    )
}


def method(name: str) -> MethodSpec:
    """The baseline called ``name``.

    Raises:
        IcrlBenchError: no such baseline (a one-line message with the closest name, if any).
    """
    spec = METHODS.get(name)
    if spec is not None:
        return spec
    typed = name.lower()
    close = difflib.get_close_matches(typed, list(METHODS), n=3)
    # two swapped letters are the commonest typo, and difflib ranks "dt" above "dpt" for "dtp"
    close.sort(key=lambda c: sorted(c) != sorted(typed))
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise IcrlBenchError(f"unknown baseline {name!r}: {hint}known: {', '.join(METHODS)}")
