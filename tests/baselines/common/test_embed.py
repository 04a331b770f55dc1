"""Embeddings: type tags by token kind, interleaving order, grid coordinates, standardising."""

from __future__ import annotations

import torch

from baselines.common.embed import SpaceEmbedding, TransitionEmbedder, space_info
from baselines.dt import Token

GRID = {"kind": "discrete", "n": 9}
ACTIONS = {"kind": "discrete", "n": 4}


def test_interleave_orders_steps_and_tags_each_part_with_its_kind() -> None:
    e = TransitionEmbedder(GRID, ACTIONS, 8, kinds=len(Token))
    parts = {k: torch.full((1, 2, 8), float(10 * k)) for k in Token}
    x = e.interleave(parts)  # [1, 6, 8]: step 0's three parts, then step 1's
    kinds = [Token.RETURN_TO_GO, Token.STATE, Token.ACTION] * 2
    for i, kind in enumerate(kinds):
        assert torch.allclose(x[0, i], 10 * kind + e.kind.weight[kind])
    assert torch.allclose(e.tag(torch.zeros(8), Token.STATE), e.kind.weight[1])


def test_coordinates_embed_held_out_cells_like_the_others() -> None:
    torch.manual_seed(0)
    emb = SpaceEmbedding(GRID, 4, coords=True, table=False)
    cells = torch.arange(9)[None]
    out = emb(cells)[0]
    # a linear map of (x, y): the middle cell is the mean of its four neighbours
    assert torch.allclose(out[4], (out[1] + out[3] + out[5] + out[7]) / 4, atol=1e-6)


def test_continuous_observations_are_standardised_with_the_data_statistics() -> None:
    info = space_info(__import__("gymnasium").spaces.Box(-1.0, 1.0, (2,)))
    emb = SpaceEmbedding(info, 4)
    emb.set_stats(torch.tensor([1.0, -1.0]), torch.tensor([2.0, 0.5]))
    x = torch.tensor([[[3.0, -0.5]]])
    assert torch.allclose(emb.standardise(x), torch.tensor([[[1.0, 1.0]]]))


def test_actions_have_a_none_row_for_no_previous_action() -> None:
    e = TransitionEmbedder(GRID, ACTIONS, 8, kinds=3)
    assert e.action.none_index == 4
    assert e.action(torch.tensor([[4]])).shape == (1, 1, 8)
