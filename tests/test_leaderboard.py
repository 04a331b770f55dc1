"""Leaderboard submission: validation of hostile files, recomputed aggregates, atomic rows,
concurrency, and rendering."""

from __future__ import annotations

import copy
import csv
import gzip
import json
import multiprocessing as mp
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from icrl_bench.cli import main
from icrl_bench.eval import evaluate, reference_agent
from icrl_bench.eval.results import MAX_RESULT_BYTES, build_result, config_sha256, write_result
from icrl_bench.leaderboard import (
    COLUMNS,
    SubmissionError,
    escape_cell,
    read_track,
    render,
    submit,
    validate,
)
from icrl_bench.registry import tasks
from icrl_bench.tasks import split_hash

Doc = dict[str, Any]


def _doc(agent: str, env: str, seeds: list[int] | None = None) -> Doc:
    res = evaluate(reference_agent(agent, env, 100), env, "online-v1", seeds=seeds or [0, 1, 2])
    return build_result(res, agent, config={"agent": agent})


@pytest.fixture(scope="module")
def grid_doc() -> Doc:
    return _doc("random", "DarkRoom-v0")


@pytest.fixture(scope="module")
def bandit_doc() -> Doc:
    return _doc("ucb", "BernoulliBandit-v0")


@pytest.fixture(scope="module")
def hard_doc() -> Doc:
    return _doc("qlearning", "DarkRoomHard-v0")


def _write(doc: Doc, path: Path) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_valid_results_are_accepted_and_aggregates_recomputed(
    grid_doc: Doc, bandit_doc: Doc, hard_doc: Doc, tmp_path: Path
) -> None:
    board = tmp_path / "lb"
    track, row = submit(_write(grid_doc, tmp_path / "a.json"), board)
    assert track == "DarkRoom-v0__online-v1"
    assert list(read_track(board / f"{track}.csv")[0]) == list(COLUMNS)
    returns = np.asarray(grid_doc["returns"])
    assert row["seeds"] == "3" and row["tasks"] == "16" and row["episodes"] == "100"
    assert float(row["final_return_mean"]) == pytest.approx(returns[:, :, -10:].mean(), rel=1e-5)
    assert row["regret_mean"] == "" and row["success_rate_mean"] == ""
    assert (board / "results" / track / f"{row['result_id']}.json.gz").is_file()
    # bandits: the regret is recomputed from the recorded pulls and the registry's tasks
    track, row = submit(_write(bandit_doc, tmp_path / "b.json"), board)
    test = tasks("BernoulliBandit-v0").test
    means = np.array([t.means for t in test])  # type: ignore[attr-defined]
    pulls = np.asarray(bandit_doc["actions"])
    regret = means.max(axis=1)[None, :, None] - means[np.arange(len(test))[None, :, None], pulls]
    assert float(row["regret_mean"]) == pytest.approx(regret.sum(axis=2).mean(), rel=1e-5)
    # and its returns are the expected returns of those pulls, not the sampled rewards
    expected = means[np.arange(len(test))[None, :, None], pulls].sum(axis=2)
    assert float(row["final_return_mean"]) == pytest.approx(expected.mean(), rel=1e-5)
    track, row = submit(_write(hard_doc, tmp_path / "c.json"), board)
    assert 0 < float(row["success_rate_mean"]) <= 1
    # honest claims are accepted
    claimed = copy.deepcopy(grid_doc)
    claimed["method"] = "claims"
    claimed["aggregates"] = {"nauc": validate(grid_doc).summary["nauc"]}
    submit(_write(claimed, tmp_path / "d.json"), board)


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def _returns(f: Callable[[np.ndarray], Any]) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        doc["returns"] = f(np.asarray(doc["returns"]))

    return mutate


def _nan(doc: Doc) -> None:
    doc["returns"][0][0][0] = float("nan")


def _inf(doc: Doc) -> None:
    doc["returns"][1][2][3] = float("inf")


def _ragged(doc: Doc) -> None:
    doc["returns"][0][0] = doc["returns"][0][0][:-1]


def _two_seeds(doc: Doc) -> None:
    doc["seeds"] = doc["seeds"][:2]
    doc["returns"] = doc["returns"][:2]


def _drop(field: str) -> Callable[[Doc], None]:
    return lambda doc: doc.pop(field)


def _bad_claim(doc: Doc) -> None:
    doc["aggregates"] = {"normalized_final": {"iqm": 0.99}}


def _train_split(doc: Doc) -> None:
    doc["tasks"]["sha256"] = split_hash(tasks("DarkRoom-v0").train)


# (case, mutation, the field the error must name)
GRID_CASES: list[tuple[str, Callable[[Doc], None], str]] = [
    ("schema version", _set("schema_version", 2), "schema_version"),
    ("protocol version", _set("protocol", "online-v2"), "protocol"),
    ("unknown env", _set("env_id", "icrl_bench/Nope-v0"), "env_id"),
    ("task set not the test split", _train_split, "tasks.sha256"),
    ("task count", _set("tasks.count", 15), "tasks.count"),
    ("train split", _set("tasks.split", "train"), "tasks.split"),
    ("too few seeds", _two_seeds, "seeds"),
    ("duplicate seeds", _set("seeds", [0, 0, 1]), "seeds"),
    ("NaN", _nan, "returns"),
    ("inf", _inf, "returns"),
    ("tasks shape", _returns(lambda r: r[:, :-1].tolist()), "returns"),
    ("episodes differ from E", _returns(lambda r: r[:, :, :50].tolist()), "returns"),
    ("ragged", _ragged, "returns"),
    ("non-numeric", _returns(lambda r: [[["1"]]]), "returns.0.0.0"),
    ("return above the oracle", _returns(lambda r: (r + 21.0).tolist()), "returns"),
    ("claimed aggregate disagrees", _bad_claim, "aggregates.normalized_final.iqm"),
    ("unknown statistic", _set("aggregates", {"nauc": {"median": 1.0}}), "aggregates.nauc.median"),
    ("extra field", _set("score", 1.0), "score"),
    ("extra nested field", _set("provenance.hostname", "x"), "provenance.hostname"),
    ("missing field", _drop("seeds"), "seeds"),
    ("negative seed", _set("seeds", [-1, 0, 1]), "seeds.0"),
    ("return beyond float64", _set("returns", [[[10**400]]]), "returns"),
    ("formula =", _set("method", "=HYPERLINK(1)"), "method"),
    ("formula +", _set("method", "+1"), "method"),
    ("formula -", _set("method", "-1"), "method"),
    ("formula @", _set("method", "@SUM(A1)"), "method"),
    ("formula in notes", _set("notes", "=cmd|' /C calc'!A0"), "notes"),
    ("path-like method", _set("method", "../../etc/passwd"), "method"),
    ("slash in method", _set("method", "a/b"), "method"),
    ("empty method", _set("method", ""), "method"),
    ("path-like dataset", _set("dataset", {"id": "../../x", "sha256": "0" * 64}), "dataset.id"),
    ("config hash", _set("config_sha256", "0" * 64), "config_sha256"),
    ("bad git sha", _set("provenance.git_sha", "not-a-sha"), "provenance.git_sha"),
    ("bad date", _set("provenance.created", "yesterday"), "provenance.created"),
    ("success on a family without it", _set("success", [[[1.0]]]), "success"),
    ("pulls on a grid", _set("actions", [[[0]]]), "actions"),
    (
        "prompt under online",
        _set("prompt_datasets", [{"id": "x", "sha256": "0" * 64}]),
        "prompt_datasets",
    ),
]


def _bandit_no_actions(doc: Doc) -> None:
    doc["actions"] = None


def _bandit_bad_arm(doc: Doc) -> None:
    doc["actions"][0][0][0] = 99


def _bandit_fake_returns(doc: Doc) -> None:
    doc["returns"] = (np.asarray(doc["returns"]) + 1e9).tolist()


def _bandit_huge_arm(doc: Doc) -> None:
    doc["actions"][0][0][0] = 10**30


BANDIT_CASES = [
    ("bandit without pulls", _bandit_no_actions, "actions"),
    ("returns the pulls cannot earn", _bandit_fake_returns, "returns"),
    ("arm beyond int64", _bandit_huge_arm, "actions"),
    ("arm out of range", _bandit_bad_arm, "actions"),
    ("pulls shape", lambda d: d.update(actions=[row[:-1] for row in d["actions"]]), "actions"),
]


@pytest.fixture(scope="module")
def _board_template(
    grid_doc: Doc, bandit_doc: Doc, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    tmp = tmp_path_factory.mktemp("board")
    root = tmp / "lb"
    ok = copy.deepcopy(grid_doc)
    ok["method"] = "existing"
    submit(_write(ok, tmp / "ok.json"), root)
    submit(_write(bandit_doc, tmp / "okb.json"), root)
    return root


@pytest.fixture
def board(_board_template: Path, tmp_path: Path) -> Path:
    """A leaderboard with one accepted row on each of two tracks (a fresh copy per test)."""
    return Path(shutil.copytree(_board_template, tmp_path / "lb"))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _assert_rejected(path: Path, root: Path, field: str) -> None:
    before = _snapshot(root)
    with pytest.raises(SubmissionError) as info:
        submit(path, root)
    assert info.value.field == field, str(info.value)
    assert repr(field) in str(info.value) and "\n" not in str(info.value)
    assert _snapshot(root) == before  # byte-for-byte unchanged


@pytest.mark.parametrize(("case", "mutate", "field"), GRID_CASES, ids=[c[0] for c in GRID_CASES])
def test_hostile_grid_results_are_rejected(
    case: str, mutate: Callable[[Doc], None], field: str, grid_doc: Doc, board: Path, tmp_path: Path
) -> None:
    doc = copy.deepcopy(grid_doc)
    mutate(doc)
    _assert_rejected(_write(doc, tmp_path / "bad.json"), board, field)


@pytest.mark.parametrize(
    ("case", "mutate", "field"), BANDIT_CASES, ids=[c[0] for c in BANDIT_CASES]
)
def test_hostile_bandit_results_are_rejected(
    case: str,
    mutate: Callable[[Doc], None],
    field: str,
    bandit_doc: Doc,
    board: Path,
    tmp_path: Path,
) -> None:
    doc = copy.deepcopy(bandit_doc)
    mutate(doc)
    _assert_rejected(_write(doc, tmp_path / "bad.json"), board, field)


def test_file_level_rejections(grid_doc: Doc, board: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_RESULT_BYTES + 1))
    _assert_rejected(big, board, "file")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 1,')
    _assert_rejected(broken, board, "file")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    _assert_rejected(listed, board, "(root)")
    _assert_rejected(tmp_path / "missing.json", board, "file")
    # a small gzip that expands past the limit is refused without expanding it in memory
    bomb = tmp_path / "bomb.json.gz"
    with gzip.open(bomb, "wb") as f:
        for _ in range(MAX_RESULT_BYTES // 2**20 + 1):
            f.write(b" " * 2**20)
    assert bomb.stat().st_size < 100_000
    _assert_rejected(bomb, board, "file")
    notgz = tmp_path / "notgz.json.gz"
    notgz.write_bytes(b"\x1f\x8bnot gzip at all")
    _assert_rejected(notgz, board, "file")


def test_duplicates_are_refused(grid_doc: Doc, board: Path, tmp_path: Path) -> None:
    doc = copy.deepcopy(grid_doc)
    doc["method"] = "existing"
    _assert_rejected(_write(doc, tmp_path / "dup.json"), board, "result_id")
    # other provenance, same raw numbers: still the same result
    doc["notes"] = "resubmitted"
    doc["provenance"]["created"] = "2030-01-01T00:00:00+00:00"
    _assert_rejected(_write(doc, tmp_path / "dup2.json"), board, "result_id")
    # the same numbers spelled differently (integers for floats) are the same result
    doc["returns"] = np.asarray(doc["returns"]).astype(int).tolist()
    assert np.array_equal(doc["returns"], grid_doc["returns"])  # random's returns are whole
    _assert_rejected(_write(doc, tmp_path / "dup3.json"), board, "result_id")
    # and so are the same runs listed in another seed order
    order = [2, 0, 1]
    doc["seeds"] = [grid_doc["seeds"][i] for i in order]
    doc["returns"] = [grid_doc["returns"][i] for i in order]
    _assert_rejected(_write(doc, tmp_path / "dup4.json"), board, "result_id")


def test_cli_rejection_is_one_line(
    grid_doc: Doc, board: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy.deepcopy(grid_doc)
    doc["seeds"] = [0, 0, 1]
    path = _write(doc, tmp_path / "bad.json")
    assert main(["submit", str(path), "--leaderboard-dir", str(board)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'seeds'" in err and err.startswith("icrl-bench: error:")


def _submit_worker(paths: list[str], root: str, barrier: Any) -> None:
    barrier.wait()
    for p in paths:
        submit(p, root)


def _variants(doc: Doc, n: int, tmp_path: Path) -> list[str]:
    out = []
    for i in range(n):
        d = copy.deepcopy(doc)
        d["method"] = f"method{i}"
        out.append(str(_write(d, tmp_path / f"r{i}.json")))
    return out


def test_eight_concurrent_submitters_lose_no_rows(grid_doc: Doc, tmp_path: Path) -> None:
    root = tmp_path / "lb"
    paths = _variants(grid_doc, 16, tmp_path)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(8)
    procs = [
        ctx.Process(target=_submit_worker, args=(paths[2 * i : 2 * i + 2], str(root), barrier))
        for i in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = read_track(root / "DarkRoom-v0__online-v1.csv")
    assert sorted(r["method"] for r in rows) == sorted(f"method{i}" for i in range(16))
    assert len({r["result_id"] for r in rows}) == 16
    assert all(len(r) == len(COLUMNS) and None not in r for r in rows)


def test_killed_submitter_leaves_a_valid_csv(grid_doc: Doc, tmp_path: Path) -> None:
    root = tmp_path / "lb"
    paths = _variants(grid_doc, 12, tmp_path)
    csv_path = root / "DarkRoom-v0__online-v1.csv"
    code = (
        "import sys\nfrom icrl_bench.leaderboard import submit\n"
        "for p in sys.argv[2:]:\n    submit(p, sys.argv[1])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), *paths])
    deadline = time.time() + 120
    while time.time() < deadline and len(read_track(csv_path)) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = read_track(csv_path)
    assert 3 <= len(rows) < 12
    with csv_path.open(newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == list(COLUMNS) and all(len(r) == len(COLUMNS) for r in table)
    # the lock died with the process: the rest can still be submitted, and none twice
    done = {r["method"] for r in rows}
    for p in paths:
        if json.loads(Path(p).read_text())["method"] not in done:
            submit(p, root)
    assert len(read_track(csv_path)) == 12


def test_render_sorts_by_headline_escapes_cells_and_plots(
    grid_doc: Doc, board: Path, tmp_path: Path
) -> None:
    oracle = _doc("oracle", "DarkRoom-v0")
    oracle["notes"] = "a | b <script> [x](y)"
    submit(_write(oracle, tmp_path / "o.json"), board)
    # a hand-edited CSV cell must not reach the output unescaped
    csv_path = board / "DarkRoom-v0__online-v1.csv"
    text = csv_path.read_text().replace("existing", "=evil", 1)
    csv_path.write_text(text)
    readme = render(board, tmp_path / "plots").read_text()
    table = readme.split("### DarkRoom-v0")[1].split("###")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert "oracle" in lines[1] and "evil" in lines[2]  # oracle first: higher is better
    assert "| '=evil v1 |" in lines[2]
    assert "<script>" not in readme and "a \\| b" in readme
    assert "### BernoulliBandit-v0\\_\\_online-v1" in readme
    for track in ("DarkRoom-v0__online-v1", "BernoulliBandit-v0__online-v1"):
        png = tmp_path / "plots" / f"{track}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_escape_cell() -> None:
    assert escape_cell("=1+2") == "'=1+2"
    assert escape_cell("@x") == "'@x"
    assert escape_cell("a|b\nc") == "a\\|b c"


def test_results_file_round_trip(grid_doc: Doc, tmp_path: Path) -> None:
    path = write_result(grid_doc, tmp_path / "sub" / "r.json")
    doc = json.loads(path.read_text())
    assert doc == json.loads(json.dumps(grid_doc))
    assert doc["config_sha256"] == config_sha256(doc["config"])
    assert set(doc["provenance"]["packages"]) >= {"python", "torch", "gymnasium", "numpy"}
    stored = gzip.compress(path.read_bytes())
    (tmp_path / "r.json.gz").write_bytes(stored)
    assert validate(doc).result_id == validate(json.loads(gzip.decompress(stored))).result_id
    # written files get the usual permissions, not mkstemp's owner-only 0600
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_evaluation_metrics_are_the_leaderboard_numbers(bandit_doc: Doc, tmp_path: Path) -> None:
    res = evaluate(
        reference_agent("ucb", "BernoulliBandit-v0", 1), "BernoulliBandit-v0", "online-v1"
    )
    _, row = submit(_write(build_result(res, "ucb"), tmp_path / "r.json"), tmp_path / "lb")
    got = res.metrics()
    for name in ("regret", "normalized_final", "final_return"):
        for stat_name in ("mean", "iqm", "iqm_low", "iqm_high"):
            assert float(row[f"{name}_{stat_name}"]) == pytest.approx(got[name][stat_name], 1e-5)


def test_compare_reports_probability_of_improvement(
    grid_doc: Doc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    oracle = _write(_doc("oracle", "DarkRoom-v0"), tmp_path / "oracle.json")
    random = _write(grid_doc, tmp_path / "random.json")
    assert main(["compare", str(oracle), str(random)]) == 0
    assert "P(oracle v1 > random v1) = 1.000" in capsys.readouterr().out
    assert main(["compare", str(random), str(oracle)]) == 0
    assert "P(random v1 > oracle v1) = 0.000" in capsys.readouterr().out
    bandit = _write(_doc("random", "BernoulliBandit-v0"), tmp_path / "bandit.json")
    assert main(["compare", str(oracle), str(bandit)]) == 2
    assert "different tracks" in capsys.readouterr().err


def test_number_spellings_and_bandit_noise_do_not_make_a_new_result(
    grid_doc: Doc, bandit_doc: Doc, board: Path, tmp_path: Path
) -> None:
    doc = copy.deepcopy(grid_doc)
    doc["method"] = "existing"
    doc["returns"][0][0][0] = -0.0 if doc["returns"][0][0][0] == 0 else doc["returns"][0][0][0]
    _assert_rejected(_write(doc, tmp_path / "negzero.json"), board, "result_id")
    # a bandit result is its pulls: nudging the sampled returns is the same result
    doc = copy.deepcopy(bandit_doc)
    doc["returns"] = (np.asarray(doc["returns"]) + 0.5).tolist()
    _assert_rejected(_write(doc, tmp_path / "nudged.json"), board, "result_id")


def test_oversized_claims_and_non_finite_config_are_named(
    grid_doc: Doc, board: Path, tmp_path: Path
) -> None:
    doc = copy.deepcopy(grid_doc)
    doc["method"] = "claims"
    doc["aggregates"] = {"nauc": {"mean": 10**400}}
    _assert_rejected(_write(doc, tmp_path / "huge.json"), board, "aggregates.nauc.mean")
    doc = copy.deepcopy(grid_doc)
    doc["method"] = "nanconfig"
    doc["config"] = {"lr": float("nan")}
    _assert_rejected(_write(doc, tmp_path / "nan.json"), board, "config")


def test_point_robot_returns_are_bounded_by_the_exact_oracle(board: Path, tmp_path: Path) -> None:
    doc = _doc("cem", "PointRobot-v0")
    submit(_write(doc, tmp_path / "ok.json"), board)  # a real learner's row is accepted
    better = copy.deepcopy(doc)
    better["method"] = "impossible"
    better["returns"][0][0][-1] = 0.0  # above the optimum (every return is negative)
    _assert_rejected(_write(better, tmp_path / "bad.json"), board, "returns")
    far = copy.deepcopy(doc)
    far["method"] = "impossible"
    far["returns"][0][0][0] = -1e6  # farther than any 20 steps can go
    _assert_rejected(_write(far, tmp_path / "far.json"), board, "returns")
