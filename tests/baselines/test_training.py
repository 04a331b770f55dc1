"""Training the baselines through the real CLI: the loss falls, runs are deterministic and
resumable, and checkpoints round-trip into results the leaderboard accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.ad import ADModel, make_sampler
from baselines.ad import Config as ADConfig
from baselines.ad import loss_fn as ad_loss
from baselines.common.checkpoint import CheckpointError, load_agent, load_state
from baselines.common.trainer import TrainConfig, train
from icrl_bench import data
from icrl_bench.cli import main
from icrl_bench.leaderboard import submit

DARKROOM = "icrl_bench/DarkRoom-v0"


class Evil:
    """An arbitrary class: unpickling it is what weights_only=True forbids."""


BANDIT = "icrl_bench/GaussianBandit-v0"
POINT = "icrl_bench/PointRobot-v0"
CHEETAH = "icrl_bench/HalfCheetahVel-v0"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("icrl_home")


@pytest.fixture
def datasets(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("ICRL_BENCH_HOME", str(home))
    return {
        "ad-eps": data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=0),
        "bandit": data.generate("GaussianBandit-v0", "random", "smoke", seed=0),
        "point": data.generate("PointRobot-v0", "histories", "smoke", seed=0),
        "cheetah": data.generate("HalfCheetahVel-v0", "random", "smoke", seed=0),
    }


def _train(method: str, task: str, dataset: str, out: Path, *extra: str) -> list[dict]:
    argv = ["train", method, "--task", task, "--dataset", dataset, "--smoke", "--no-progress"]
    assert main([*argv, "--out", str(out), *extra]) == 0
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


SMOKE_RUNS = [
    ("ad", DARKROOM, "ad-eps"),
    ("dpt", DARKROOM, "ad-eps"),
    ("dpt", BANDIT, "bandit"),
    # Baselines II on one discrete and one continuous family
    ("dt", DARKROOM, "ad-eps"),
    ("dt", POINT, "point"),
    ("meta-dt", DARKROOM, "ad-eps"),
    ("meta-dt", POINT, "point"),
    ("t2mir-ad", DARKROOM, "ad-eps"),
    ("t2mir-ad", POINT, "point"),
    ("t2mir-dpt", DARKROOM, "ad-eps"),
    ("t2mir-dpt", POINT, "point"),
    # AD and DPT's continuous variants
    ("ad", POINT, "point"),
    ("dpt", POINT, "point"),
    # a simulator family (its spaces come from an env, not a NumPy core)
    ("meta-dt", CHEETAH, "cheetah"),
]


@pytest.mark.parametrize(
    ("method", "task", "key"),
    SMOKE_RUNS,
    ids=[f"{m}-{t.split('/')[1].split('-')[0].lower()}" for m, t, _ in SMOKE_RUNS],
)
def test_smoke_training_lowers_the_loss(
    method: str, task: str, key: str, datasets: dict[str, str], tmp_path: Path
) -> None:
    log = _train(method, task, datasets[key], tmp_path / "ckpt")
    assert log[-1]["step"] == 60
    first, last = log[0]["loss"], np.mean([r["loss"] for r in log[-2:]])
    assert last < 0.95 * first, [r["loss"] for r in log]
    meta = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert meta["method"] == method and meta["dataset"]["id"] == datasets[key]
    assert meta["config"]["train"]["steps"] == 60  # the resolved config, smoke applied
    if key in ("point", "cheetah"):  # continuous observations: standardised by the data's stats
        stats = meta["observation_stats"]
        obs = np.asarray(data.load(datasets[key]).arrays["observations"], dtype=np.float64)
        assert np.allclose(stats["mean"], obs.mean(0), atol=1e-6)
        assert np.allclose(stats["std"], obs.std(0), atol=1e-6)
        weights = load_state(tmp_path / "ckpt" / "model.pt")
        assert np.allclose(weights["embed.obs.mean"].numpy(), stats["mean"], atol=1e-6)


def test_same_seed_gives_identical_losses_and_checkpoints(
    datasets: dict[str, str], tmp_path: Path
) -> None:
    a = _train("ad", DARKROOM, datasets["ad-eps"], tmp_path / "a")
    b = _train("ad", DARKROOM, datasets["ad-eps"], tmp_path / "b")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa, wb = (load_state(tmp_path / d / "model.pt") for d in ("a", "b"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()
    c = _train("ad", DARKROOM, datasets["ad-eps"], tmp_path / "c", "--set", "train.seed=1")
    assert [r["loss"] for r in c] != [r["loss"] for r in a]


def test_an_interrupted_run_resumes_to_the_same_weights(
    datasets: dict[str, str], tmp_path: Path
) -> None:
    cfg = ADConfig(context=20, d_model=32, n_layers=2, n_heads=2, dropout=0.1)
    tcfg = TrainConfig(steps=40, batch_size=8, warmup_steps=5, checkpoint_every=20, log_every=10)
    ds = data.load(datasets["ad-eps"])
    sample = make_sampler(cfg, ds, tcfg.batch_size, torch.device("cpu"))

    def model() -> ADModel:
        torch.manual_seed(0)
        return ADModel(cfg, {"kind": "discrete", "n": 81}, {"kind": "discrete", "n": 5})

    straight = train(model(), sample, ad_loss, tcfg, tmp_path / "straight", progress=False)
    calls = {"n": 0}

    def dies_at_step_27(rng: np.random.Generator) -> dict[str, torch.Tensor]:
        calls["n"] += 1
        if calls["n"] == 27:
            raise KeyboardInterrupt
        return sample(rng)

    with pytest.raises(KeyboardInterrupt):
        train(model(), dies_at_step_27, ad_loss, tcfg, tmp_path / "resumed", progress=False)
    state = load_state(tmp_path / "resumed" / "train_state.pt")
    assert state["step"] == 20  # the last checkpoint before the crash
    resumed = train(model(), sample, ad_loss, tcfg, tmp_path / "resumed", progress=False)
    assert resumed == straight
    wa, wb = (load_state(tmp_path / d / "model.pt") for d in ("straight", "resumed"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_checkpoint_round_trip_and_bad_checkpoints(
    datasets: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "ckpt"
    _train("dpt", DARKROOM, datasets["ad-eps"], ckpt)
    loaded = load_agent(ckpt, DARKROOM)
    assert loaded.method == "dpt" and loaded.dataset is not None
    # weights load with weights_only=True and equal what training left
    state = torch.load(ckpt / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in loaded.agent.model.state_dict().items())
    with pytest.raises(CheckpointError, match="trained on icrl_bench/DarkRoom-v0"):
        load_agent(ckpt, BANDIT)

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint.json").write_text((ckpt / "checkpoint.json").read_text())
    (corrupt / "model.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a valid weights file"):
        load_agent(corrupt, DARKROOM)

    torch.save({"x": Evil()}, corrupt / "model.pt")  # a pickle weights_only refuses
    with pytest.raises(CheckpointError, match="not a valid weights file"):
        load_agent(corrupt, DARKROOM)
    torch.save({"foreign.weight": torch.zeros(3)}, corrupt / "model.pt")
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_agent(corrupt, DARKROOM)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with pytest.raises(CheckpointError, match="not an icrl-bench checkpoint"):
        load_agent(foreign, DARKROOM)
    (foreign / "checkpoint.json").write_text('{"format": "someone-else-1"}')
    with pytest.raises(CheckpointError, match="is not 'icrl-bench-checkpoint-1'"):
        load_agent(foreign, DARKROOM)
    # through the CLI: one line, non-zero
    argv = ["evaluate", "--agent", str(corrupt), "--task", DARKROOM, "--seeds", "0", "1", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not fit the model" in err


def test_checkpoint_results_are_accepted_by_submit(
    datasets: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "ad"
    _train("ad", DARKROOM, datasets["ad-eps"], ckpt)
    out = tmp_path / "ad.json"
    argv = ["evaluate", "--agent", str(ckpt), "--task", DARKROOM, "--protocol", "online-v1"]
    assert main([*argv, "--seeds", "0", "1", "2", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["method"] == "ad" and doc["dataset"]["id"] == datasets["ad-eps"]
    assert np.asarray(doc["returns"]).shape == (1, 3, 16, 100)  # one training run
    assert [r["train_seed"] for r in doc["runs"]] == [0]
    track, row = submit(out, tmp_path / "lb")
    assert track == "DarkRoom-v0__online-v1" and row["dataset"] == datasets["ad-eps"]
    assert row["runs"] == "1"
    # how the agent chose its actions is in the result's config and in the row's notes
    model = doc["config"]["model"]
    expected = {"argmax": "actions argmax", "sample": "actions sampled at temperature"}
    assert expected[model["action_selection"]] in row["notes"]
    # the same checkpoint under the prompted protocol, DPT-style offline use of a dataset
    dpt = tmp_path / "dpt"
    _train("dpt", DARKROOM, datasets["ad-eps"], dpt)
    argv = ["evaluate", "--agent", str(dpt), "--task", DARKROOM, "--protocol", "offline-prompt-v1"]
    assert main([*argv, "--seeds", "0", "1", "2", "--out", str(tmp_path / "dpt.json")]) == 0
    submit(tmp_path / "dpt.json", tmp_path / "lb")


def test_training_runs_evaluate_into_one_result(
    datasets: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train --seeds`` trains independent runs; ``evaluate --agent`` with all of them writes one
    result whose leaderboard row aggregates over the runs. Checkpoints of another method, config
    or dataset, or a repeated training seed, are refused in one line."""
    base = ["train", "ad", "--task", DARKROOM, "--dataset", datasets["ad-eps"], "--smoke"]
    steps = ["--set", "train.steps=20", "--no-progress"]
    assert main([*base, *steps, "--seeds", "0", "1", "2", "--out", str(tmp_path / "ad")]) == 0
    runs = [tmp_path / "ad" / f"seed{s}" for s in (0, 1, 2)]
    assert "evaluate the runs as one result" in capsys.readouterr().out
    seeds = [json.loads((r / "checkpoint.json").read_text()) for r in runs]
    assert [m["config"]["train"]["seed"] for m in seeds] == [0, 1, 2]
    assert all(len(m["git_sha"] or "x" * 40) == 40 for m in seeds)
    out = tmp_path / "ad.json"
    ev = ["evaluate", "--task", DARKROOM, "--seeds", "0", "1", "2", "--out", str(out)]
    assert main([*ev, "--agent", *map(str, runs)]) == 0
    assert "3 training runs x 3 evaluation seeds" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert np.asarray(doc["returns"]).shape == (3, 3, 16, 100)
    assert [r["train_seed"] for r in doc["runs"]] == [0, 1, 2]
    assert "seed" not in doc["config"]["train"]  # each run records its own
    assert len({r["config_sha256"] for r in doc["runs"]}) == 1
    _, row = submit(out, tmp_path / "lb")
    assert row["runs"] == "3" and row["seeds"] == "3"

    # refused, in one line, before anything is written
    other = tmp_path / "other"
    _train("ad", DARKROOM, datasets["ad-eps"], other / "lr", "--set", "train.lr=0.01")
    _train("dpt", DARKROOM, datasets["ad-eps"], other / "dpt", "--set", "train.seed=1")
    _train("ad", DARKROOM, datasets["ad-eps"], other / "seed0", "--set", "train.steps=20")
    other_data = data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=1)
    _train(
        "ad",
        DARKROOM,
        other_data,
        other / "data",
        "--set",
        "train.seed=1",
        "--set",
        "train.steps=20",
    )
    capsys.readouterr()
    bad_out = tmp_path / "bad.json"
    ev[-1] = str(bad_out)
    for extra, message in [
        (other / "dpt", "method dpt v3, not ad v2"),
        (other / "lr", "config that differs in more than its training seed"),
        (other / "data", "dataset DarkRoom-v0/ad-eps-v1/smoke-seed1, not"),
        (other / "seed0", "training seed 0 repeats"),
    ]:
        assert main([*ev, "--agent", str(runs[0]), str(extra)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
        assert not bad_out.exists()
    assert main([*ev, "--agent", "random", str(runs[0])]) == 2
    assert "reference agent" in capsys.readouterr().err


@pytest.mark.parametrize(("method", "protocol"), [("dt", "zero-shot-v1"), ("meta-dt", "online-v1")])
def test_continuous_checkpoints_evaluate_and_submit(
    method: str, protocol: str, datasets: dict[str, str], tmp_path: Path
) -> None:
    ckpt = tmp_path / method
    _train(method, POINT, datasets["point"], ckpt)
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    best = float(data.load(datasets["point"]).episode_returns().max())
    assert meta["data_facts"]["target_return"] == pytest.approx(best)  # "data-max" target
    out = tmp_path / "r.json"
    argv = ["evaluate", "--agent", str(ckpt), "--task", POINT, "--protocol", protocol]
    assert main([*argv, "--seeds", "0", "1", "2", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["method"] == method and np.isfinite(np.asarray(doc["returns"])).all()
    track, _ = submit(out, tmp_path / "lb")
    assert track == f"PointRobot-v0__{protocol}"


def test_config_errors_are_one_line(
    datasets: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "ad", "--task", DARKROOM, "--dataset", datasets["ad-eps"], "--smoke"]
    for extra, message in [
        (["--set", "model.nope=1"], "unknown config key 'model.nope'"),
        (["--set", "train.lr=fast"], "config key 'train.lr' must be a number"),
        (["--set", "model.tokens=words"], "tokens must be 'transition' or 'interleaved'"),
        (["--set", "model.action_head=gaussian"], "does not fit a discrete action space"),
        (["--set", "novalue"], "expected key=value"),
        (["--config", "/nonexistent.yaml"], "no config /nonexistent.yaml"),
    ]:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
    assert main(["train", "ad", "--task", BANDIT, "--dataset", datasets["ad-eps"], "--smoke"]) == 2
    assert "is for DarkRoom-v0, not GaussianBandit-v0" in capsys.readouterr().err


def test_checkpoints_from_before_continuous_heads_still_load(tmp_path: Path) -> None:
    """A model.pt whose action head was a bare linear layer and which has no standardisation
    buffers (written before continuous actions) loads into today's model unchanged."""
    from baselines.common.checkpoint import load_weights
    from baselines.dpt import Config as DPTConfig
    from baselines.dpt import DPTModel

    torch.manual_seed(0)
    model = DPTModel(
        DPTConfig(d_model=16, n_layers=1),
        {"kind": "box", "shape": [1]},
        {"kind": "discrete", "n": 5},
    )
    old = {k: v for k, v in model.state_dict().items() if not k.endswith((".mean", ".std"))}
    old["head.weight"], old["head.bias"] = (
        old.pop("head.linear.weight"),
        old.pop("head.linear.bias"),
    )
    torch.save(old, tmp_path / "model.pt")
    fresh = DPTModel(
        DPTConfig(d_model=16, n_layers=1),
        {"kind": "box", "shape": [1]},
        {"kind": "discrete", "n": 5},
    )
    load_weights(fresh, tmp_path)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
