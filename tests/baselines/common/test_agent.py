"""The transformer agents' shared protocol: observe hands remember one Step; prompts stack."""

from __future__ import annotations

import numpy as np
import torch

from baselines.common.agent import Step, TransformerAgent, stack_prompts
from baselines.dt import Config, DTModel


class Recording(TransformerAgent):
    """An agent that keeps what ``observe`` hands on."""

    def __init__(self) -> None:
        super().__init__(DTModel(Config(d_model=8, n_layers=1, context=2), GRID, ACTIONS))
        self.steps: list[Step] = []

    def remember(self, step: Step) -> None:
        self.steps.append(step)


GRID = {"kind": "discrete", "n": 9}
ACTIONS = {"kind": "discrete", "n": 4}


def test_observe_hands_remember_the_step_with_episode_ends_merged() -> None:
    agent = Recording()
    agent.observe(
        [1, 2, 3], [0, 1, 2], [0.0, 1.0, 0.0], [4, 5, 6],
        np.array([True, False, False]), np.array([False, False, True]),
    )  # fmt: skip
    (step,) = agent.steps
    assert step.done.tolist() == [True, False, True]
    assert isinstance(step.obs, np.ndarray) and step.next_obs.tolist() == [4, 5, 6]
    assert agent._reward(step).dtype == torch.float32


def test_actions_follow_the_configs_selection() -> None:
    agent = Recording()
    agent.logits = lambda obs: torch.tensor([[0.0, 5.0, 1.0, 0.0]] * len(obs))  # type: ignore[method-assign]
    assert agent.act(np.zeros(3, np.int64)).tolist() == [1, 1, 1]  # argmax by default


def test_prompts_are_cut_to_the_shortest_and_stacked() -> None:
    def prompt(n: int) -> dict[str, np.ndarray]:
        return {
            k: np.arange(n) for k in ("observations", "actions", "rewards", "next_observations")
        }

    p = stack_prompts([prompt(5), prompt(3)], keep=10)
    assert p is not None and p["actions"].tolist() == [[2, 3, 4], [0, 1, 2]]
    assert stack_prompts([prompt(5)], keep=2)["actions"].tolist() == [[3, 4]]  # type: ignore[index]
    assert stack_prompts([prompt(0)], keep=2) is None
