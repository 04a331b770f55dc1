"""The icrl-bench command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from icrl_bench import cli
from icrl_bench.cli import main


def test_tasks_list_shows_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks", "list"]) == 0
    out = capsys.readouterr().out
    assert "icrl_bench/DarkRoom-v0" in out and "icrl_bench/KeyToDoor-v0" in out
    assert "65/16" in out and "16.625" in out


def test_tasks_show_prints_spec_and_docs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks", "show", "icrl_bench/DarkRoom10x10-v0"]) == 0
    out = capsys.readouterr().out
    assert "published task set" in out and "## Action Space" in out


def test_quickstart_evaluates_submits_and_renders(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the shipped quickstart trains on the streams-scale histories; smoke-scale ones here
    monkeypatch.setattr(cli, "QUICKSTART_DATA", ("histories", "smoke"))
    assert main(["quickstart", "--steps", "20", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "DarkRoom-v0\\_\\_online-v1" in out
    assert "in-context learning: normalized return by episode" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and " v" in line]
    methods = [row.split("|")[2].strip() for row in rows]
    # sorted by the headline: the oracle (normalised 1) first, Q-learning above random
    assert sorted(methods) == ["ad v2", "oracle v1", "qlearning v1", "random v1"]
    assert methods[0] == "oracle v1" and "| 1.000 [1.000, 1.000] |" in rows[0]
    assert methods.index("qlearning v1") < methods.index("random v1")
    ad_row = rows[methods.index("ad v2")]
    assert "DarkRoom-v0/histories-v0/smoke-seed0" in ad_row and "quickstart budget" in ad_row
    assert "| 2 ⚠ |" in ad_row  # two training runs: flagged, with an interval
    assert "actions sampled at temperature 0.3" in ad_row


def test_bad_id_is_one_line_and_nonzero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "icrl_bench.cli", "tasks", "show", "Nope-v0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown task family 'Nope-v0'" in proc.stderr


def test_data_generate_list_show_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "generate", "DarkRoom-v0", "--variant", "ad-eps", "--seed", "4"]) == 0
    assert "DarkRoom-v0/ad-eps-v1/smoke-seed4: 28,800 transitions" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    assert "DarkRoom-v0/ad-eps-v1/smoke-seed4" in capsys.readouterr().out
    assert main(["data", "show", "DarkRoom-v0/ad-eps-v1"]) == 0
    out = capsys.readouterr().out
    assert "declared final (floor) return" in out and "return by episode index" in out
    assert main(["data", "verify", "DarkRoom-v0/ad-eps-v1/smoke-seed4"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "generate", "DarkRoom-v0", "--variant", "bogus"], "unknown dataset variant"),
        (["data", "generate", "DarkRoom-v0", "--variant", "random", "--set", "x"], "key=value"),
        (["data", "show", "DarkRoom-v0/random-v0"], "no dataset"),
    ],
)
def test_data_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_evaluate_without_an_expert_reference_writes_raw_returns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A locomotion family whose SAC expert is not trained yet: the results file is written and
    the raw return reported (exit 0); submitting it fails in one line and changes nothing."""
    out = tmp_path / "random.json"
    argv = ["evaluate", "--agent", "random", "--task", "icrl_bench/HalfCheetahVel-v0"]
    argv += ["--protocol", "online-v1", "--seeds", "0", "1", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert out.exists() and "final-episode return mean -" in printed
    assert "not normalised: HalfCheetahVel-v0: no expert reference" in printed
    assert "icrl-bench data references HalfCheetahVel-v0" in printed
    board = tmp_path / "boards"
    assert main(["submit", str(out), "--leaderboard-dir", str(board)]) == 2
    err = capsys.readouterr().err
    assert "no expert reference" in err and err.count("\n") == 1
    assert not board.exists()
