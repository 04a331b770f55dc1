"""Action heads: the right kind per space, actions inside the box, losses that reward the truth;
observation standardisation from buffers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.common.embed import SpaceEmbedding, space_info
from baselines.common.heads import ActionHead, resolve_kind
from icrl_bench.registry import family

BOX = {"kind": "box", "shape": [2], "low": [-0.1, -0.5], "high": [0.1, 0.5]}
DISCRETE = {"kind": "discrete", "n": 5}


def test_kind_follows_the_action_space() -> None:
    assert resolve_kind("auto", DISCRETE) == "categorical"
    assert resolve_kind("auto", BOX) == "mse"
    assert resolve_kind("gaussian", BOX) == "gaussian"
    with pytest.raises(ValueError, match="does not fit a discrete action space"):
        resolve_kind("mse", DISCRETE)
    with pytest.raises(ValueError, match="does not fit a continuous action space"):
        resolve_kind("categorical", BOX)
    with pytest.raises(ValueError, match="action_head must be one of"):
        resolve_kind("beta", BOX)


def test_space_info_of_a_real_family_records_the_action_box() -> None:
    core = family("PointRobot-v0").core()
    info = space_info(core.single_action_space)
    assert info["low"] == pytest.approx([-0.1, -0.1]) and info["high"] == pytest.approx([0.1, 0.1])


@pytest.mark.parametrize("kind", ["mse", "gaussian"])
def test_continuous_actions_stay_in_the_box_and_the_loss_prefers_the_target(kind: str) -> None:
    torch.manual_seed(0)
    head = ActionHead(BOX, 8, kind)
    out = head(torch.randn(64, 8) * 10)  # large inputs: tanh saturates
    for mode in ("argmax", "sample"):
        a = head.act(out, mode, torch.Generator().manual_seed(0))
        assert a.shape == (64, 2) and a.dtype == np.float32
        assert (a[:, 0] >= -0.1 - 1e-6).all() and (a[:, 0] <= 0.1 + 1e-6).all()
        assert (np.abs(a[:, 1]) <= 0.5 + 1e-6).all()
    # the mode maps back to the box: a zero output is the box's centre
    zero = torch.zeros(1, head.linear.out_features)
    assert np.allclose(head.act(zero, "argmax", torch.Generator()), 0.0)
    # a prediction at the target scores better than one beside it
    target = torch.tensor([[0.05, -0.25]])
    exact = torch.cat([head.scale(target), torch.full((1, head.dim), -2.0)], -1)[:, : out.shape[1]]
    off = exact.clone()
    off[:, :2] += 0.5
    assert head.loss(exact, target)[0] < head.loss(off, target)[0]


def test_categorical_head_loss_and_actions() -> None:
    head = ActionHead(DISCRETE, 8)
    logits = torch.tensor([[0.0, 5.0, 0.0, 0.0, 0.0]])
    assert head.act(logits, "argmax", torch.Generator()).tolist() == [1]
    loss, scalars = head.loss(logits, torch.tensor([1]))
    assert scalars["accuracy"] == 1.0 and loss < head.loss(logits, torch.tensor([2]))[0]
    # a mask leaves out positions
    two = torch.stack([logits[0], logits[0]])
    masked, _ = head.loss(two, torch.tensor([1, 2]), mask=torch.tensor([True, False]))
    assert masked == pytest.approx(float(loss))


def test_observation_embedding_standardises_with_its_buffers() -> None:
    emb = SpaceEmbedding({"kind": "box", "shape": [2]}, 4)
    emb.set_stats(torch.tensor([1.0, -2.0]), torch.tensor([2.0, 0.5]))
    x = torch.tensor([[[3.0, -1.0]]])
    assert torch.allclose(emb.standardise(x), torch.tensor([[[1.0, 2.0]]]))
    assert set(emb.state_dict()) >= {"mean", "std"}  # they travel with the weights
