"""Leaderboard submission: validation of hostile files, recomputed aggregates over training runs,
atomic rows, one current row per method, concurrency, migration and rendering."""

from __future__ import annotations

import copy
import csv
import gzip
import json
import multiprocessing as mp
import os
import re
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
from icrl_bench.eval.results import (
    MAX_RESULT_BYTES,
    Run,
    build_result,
    config_sha256,
    strip_seed,
    write_result,
)
from icrl_bench.leaderboard import (
    COLUMNS,
    SubmissionError,
    escape_cell,
    escape_notes,
    json_depth,
    migrate,
    read_track,
    render,
    submit,
    validate,
)
from icrl_bench.leaderboard.render import draw_curve
from icrl_bench.registry import tasks
from icrl_bench.tasks import split_hash
from tests.hostile import run_cli

Doc = dict[str, Any]


def _doc(agent: str, env: str, seeds: list[int] | None = None) -> Doc:
    res = evaluate(reference_agent(agent, env, 100), env, "online-v1", seeds=seeds or [0, 1, 2])
    return build_result(res, agent, config={"agent": agent})


def _run(seed: int, config: dict[str, Any], dataset_sha: str | None = None) -> Run:
    return Run(seed, config_sha256(strip_seed(config)), dataset_sha, None)


def _learned(doc: Doc, method: str, train_seeds: tuple[int, ...] = (0,)) -> Doc:
    """A reference agent's result dressed as a learned method's: each training run holds that
    agent's returns (fixtures only; no training)."""
    out = copy.deepcopy(doc)
    out["method"] = method
    out["config"] = {"model": {"d_model": 8}, "train": {"steps": 1}}
    out["config_sha256"] = config_sha256(out["config"])
    out["runs"] = [_run(s, out["config"]).to_json() for s in train_seeds]
    for name in ("returns", "actions", "success"):
        if out[name] is not None:
            out[name] = [out[name][0] for _ in train_seeds]
    return out


def _runs_of(docs: list[Doc], method: str) -> Doc:
    """One result whose runs are the given reference results (which differ in their returns)."""
    out = _learned(docs[0], method, tuple(range(len(docs))))
    for name in ("returns", "actions", "success"):
        if out[name] is not None:
            out[name] = [d[name][0] for d in docs]
    return out


def _v1(doc: Doc) -> Doc:
    """The same result as a schema-1 file (one model, ``[seeds, tasks, ...]`` arrays)."""
    out = copy.deepcopy(doc)
    assert out["runs"] is None or len(out["runs"]) == 1
    out.pop("runs")
    out["schema_version"] = 1
    for name in ("returns", "actions", "success"):
        if out[name] is not None:
            out[name] = out[name][0]
    return out


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
    assert returns.shape == (1, 3, 16, 100)  # [runs, seeds, tasks, episodes]
    assert row["seeds"] == "3" and row["tasks"] == "16" and row["episodes"] == "100"
    assert row["runs"] == "3"  # a reference agent is not trained: its seeds are its runs
    assert float(row["final_return_mean"]) == pytest.approx(returns[..., -10:].mean(), rel=1e-5)
    assert row["regret_mean"] == "" and row["success_rate_mean"] == ""
    assert (board / "results" / track / f"{row['result_id']}.json.gz").is_file()
    # bandits: the regret is recomputed from the recorded pulls and the registry's tasks
    track, row = submit(_write(bandit_doc, tmp_path / "b.json"), board)
    test = tasks("BernoulliBandit-v0").test
    means = np.array([t.means for t in test])  # type: ignore[attr-defined]
    pulls = np.asarray(bandit_doc["actions"])
    regret = means.max(axis=1)[:, None] - means[np.arange(len(test))[:, None], pulls]
    assert float(row["regret_mean"]) == pytest.approx(regret.sum(axis=-1).mean(), rel=1e-5)
    # and its returns are the expected returns of those pulls, not the sampled rewards
    expected = means[np.arange(len(test))[:, None], pulls].sum(axis=-1)
    assert float(row["final_return_mean"]) == pytest.approx(expected.mean(), rel=1e-5)
    track, row = submit(_write(hard_doc, tmp_path / "c.json"), board)
    assert 0 < float(row["success_rate_mean"]) <= 1
    # honest claims are accepted
    claimed = _learned(grid_doc, "claims")
    claimed["aggregates"] = {"nauc": validate(claimed).summary["nauc"]}
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
    doc["returns"][0][0][0][0] = float("nan")


def _inf(doc: Doc) -> None:
    doc["returns"][0][1][2][3] = float("inf")


def _ragged(doc: Doc) -> None:
    doc["returns"][0][0][0] = doc["returns"][0][0][0][:-1]


def _two_seeds(doc: Doc) -> None:
    doc["seeds"] = doc["seeds"][:2]
    doc["returns"] = [run[:2] for run in doc["returns"]]


def _drop(field: str) -> Callable[[Doc], None]:
    return lambda doc: doc.pop(field)


def _bad_claim(doc: Doc) -> None:
    doc["aggregates"] = {"normalized_final": {"iqm": 0.99}}


def _train_split(doc: Doc) -> None:
    doc["tasks"]["sha256"] = split_hash(tasks("DarkRoom-v0").train)


# (case, mutation, the field the error must name)
GRID_CASES: list[tuple[str, Callable[[Doc], None], str]] = [
    ("schema version", _set("schema_version", 3), "schema_version"),
    ("schema version as text", _set("schema_version", "2"), "schema_version"),
    ("protocol version", _set("protocol", "online-v2"), "protocol"),
    ("unknown env", _set("env_id", "icrl_bench/Nope-v0"), "env_id"),
    ("task set not the test split", _train_split, "tasks.sha256"),
    ("task count", _set("tasks.count", 15), "tasks.count"),
    ("train split", _set("tasks.split", "train"), "tasks.split"),
    ("too few seeds", _two_seeds, "seeds"),
    ("duplicate seeds", _set("seeds", [0, 0, 1]), "seeds"),
    ("NaN", _nan, "returns"),
    ("inf", _inf, "returns"),
    ("tasks shape", _returns(lambda r: r[:, :, :-1].tolist()), "returns"),
    ("episodes differ from E", _returns(lambda r: r[..., :50].tolist()), "returns"),
    ("a v1 shape in a v2 file", _returns(lambda r: r[0].tolist()), "returns.0.0.0"),
    ("two rows without training runs", _returns(lambda r: [r[0].tolist()] * 2), "returns"),
    ("ragged", _ragged, "returns"),
    ("non-numeric", _returns(lambda r: [[[["1"]]]]), "returns.0.0.0.0"),
    ("return above the oracle", _returns(lambda r: (r + 21.0).tolist()), "returns"),
    ("claimed aggregate disagrees", _bad_claim, "aggregates.normalized_final.iqm"),
    ("unknown statistic", _set("aggregates", {"nauc": {"median": 1.0}}), "aggregates.nauc.median"),
    ("extra field", _set("score", 1.0), "score"),
    ("extra nested field", _set("provenance.hostname", "x"), "provenance.hostname"),
    ("missing field", _drop("seeds"), "seeds"),
    ("negative seed", _set("seeds", [-1, 0, 1]), "seeds.0"),
    ("return beyond float64", _set("returns", [[[[10**400]]]]), "returns"),
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
    ("success on a family without it", _set("success", [[[[1.0]]]]), "success"),
    ("pulls on a grid", _set("actions", [[[[0]]]]), "actions"),
    ("a reference agent with training runs", _set("runs", [_run(0, {}).to_json()]), "runs"),
    ("a learned method without runs", _set("method", "mine"), "runs"),
    ("missing runs", _drop("runs"), "runs"),
    ("a reference name in capitals", _set("method", "Random"), "method"),
    ("a reference name with a separator", _set("method", "q-learning"), "method"),
    ("a reference name plus whitespace", _set("method", "random "), "method"),
    ("space in method", _set("method", "my method"), "method"),
    ("bidi override in notes", _set("notes", "abc\u202edef"), "notes"),
    ("line separator in notes", _set("notes", "a\u2028b"), "notes"),
    ("next-line control in notes", _set("notes", "a\u0085b"), "notes"),
    ("DEL in notes", _set("notes", "a\x7fb"), "notes"),
    ("zero-width space in a config key", _set("config.\u200bmodel", 1), "config.\u200bmodel"),
    (
        "control character in a version",
        _set("provenance.packages.numpy", "2\x00"),
        "provenance.packages.numpy",
    ),
    ("compact ISO date", _set("provenance.created", "20261205T205531"), "provenance.created"),
    ("date only", _set("provenance.created", "2026-12-05"), "provenance.created"),
    (
        "created in the future",
        _set("provenance.created", "9999-12-31T00:00:00+00:00"),
        "provenance.created",
    ),
    (
        "prompt under online",
        _set("prompt_datasets", [{"id": "x", "sha256": "0" * 64}]),
        "prompt_datasets",
    ),
]


def _bandit_no_actions(doc: Doc) -> None:
    doc["actions"] = None


def _bandit_bad_arm(doc: Doc) -> None:
    doc["actions"][0][0][0][0] = 99


def _bandit_fake_returns(doc: Doc) -> None:
    doc["returns"] = (np.asarray(doc["returns"]) + 1e9).tolist()


def _bandit_huge_arm(doc: Doc) -> None:
    doc["actions"][0][0][0][0] = 10**30


BANDIT_CASES = [
    ("bandit without pulls", _bandit_no_actions, "actions"),
    ("returns the pulls cannot earn", _bandit_fake_returns, "returns"),
    ("arm beyond int64", _bandit_huge_arm, "actions"),
    ("arm out of range", _bandit_bad_arm, "actions"),
    (
        "pulls shape",
        lambda d: d.update(actions=[[s[:-1] for s in r] for r in d["actions"]]),
        "actions",
    ),
]


@pytest.fixture(scope="module")
def _board_template(
    grid_doc: Doc, bandit_doc: Doc, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    tmp = tmp_path_factory.mktemp("board")
    root = tmp / "lb"
    submit(_write(_learned(grid_doc, "existing"), tmp / "ok.json"), root)
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
    broken.write_text('{"schema_version": 2,')
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
    doc = _learned(grid_doc, "existing")
    _assert_rejected(_write(doc, tmp_path / "dup.json"), board, "result_id")
    # other provenance, same raw numbers: still the same result
    doc["notes"] = "resubmitted"
    doc["provenance"]["created"] = "2026-01-01T00:00:00+00:00"
    _assert_rejected(_write(doc, tmp_path / "dup2.json"), board, "result_id")
    # the same numbers spelled differently (integers for floats) are the same result
    doc["returns"] = np.asarray(doc["returns"]).astype(int).tolist()
    assert np.array_equal(doc["returns"], grid_doc["returns"])  # random's returns are whole
    _assert_rejected(_write(doc, tmp_path / "dup3.json"), board, "result_id")
    # and so are the same runs listed in another seed order
    order = [2, 0, 1]
    doc["seeds"] = [grid_doc["seeds"][i] for i in order]
    doc["returns"] = [[grid_doc["returns"][0][i] for i in order]]
    _assert_rejected(_write(doc, tmp_path / "dup4.json"), board, "result_id")


def test_returns_changed_in_their_last_bits_are_a_duplicate(
    grid_doc: Doc, board: Path, tmp_path: Path
) -> None:
    doc = _learned(grid_doc, "existing")
    returns = np.asarray(doc["returns"], dtype=np.float64)
    returns[0, 0, 0, 0] = np.nextafter(returns[0, 0, 0, 0], np.inf)  # e.g. 0 -> 5e-324
    doc["returns"] = returns.tolist()
    assert validate(doc).result_id != validate(_learned(grid_doc, "existing")).result_id
    _assert_rejected(_write(doc, tmp_path / "bits.json"), board, "result_id")
    # a real difference in one return is a new result
    returns[0, 0, 0, 0] += 1.0
    doc["returns"] = returns.tolist()
    submit(_write(doc, tmp_path / "new.json"), board)


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo", "directory", "deep", "latin-1"])
def test_hostile_files_end_in_one_line_without_hang_or_memory(
    kind: str, board: Path, tmp_path: Path
) -> None:
    path = tmp_path / "result.json"
    if kind == "symlink to /dev/zero":
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero")
        path.symlink_to("/dev/zero")
        needle = "not a regular file"
    elif kind == "fifo":
        os.mkfifo(path)  # nobody ever writes: a blocking open would hang forever
        needle = "not a regular file"
    elif kind == "directory":
        path.mkdir()
        needle = "not a regular file"
    elif kind == "deep":  # 100,000 levels: RecursionError in json, far more in jsonschema
        path.write_text('{"config": ' + "[" * 100_000 + "]" * 100_000 + "}")
        needle = "nested 100001 levels deep"
    else:
        path.write_bytes('{"notes": "caf\u00e9"}'.encode("latin-1"))
        needle = "not UTF-8"
    before = _snapshot(board)
    outcome = run_cli("submit", str(path), "--leaderboard-dir", str(board))
    outcome.assert_refused("'file'", needle)
    assert _snapshot(board) == before


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": [[1], {"b": "[[[[{{{{"}], "c": "\\"}') == 3
    assert json_depth(b'"[[["') == 0 and json_depth(b"[]") == 1


def test_notes_render_as_inert_text() -> None:
    hostile = "~~gone~~ [link](https://evil.example) @admin $$x^2$$ a|b `tick` <b>x</b>"
    cell = escape_notes(hostile)
    assert cell.startswith("`` ") and cell.endswith(" ``")  # a code span: nothing forms inside
    assert "a\\|b" in cell and "\n" not in cell
    assert escape_notes("x" * 600).endswith("\u2026 `") and len(escape_notes("x" * 600)) == 504
    assert escape_notes("") == ""


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
        out.append(str(_write(_learned(doc, f"method{i}"), tmp_path / f"r{i}.json")))
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
    assert all(r["superseded_by"] == "" for r in rows)  # 16 methods, one row each


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
    oracle["notes"] = "the suite's budget"  # a reference row shows what the agent is instead
    submit(_write(oracle, tmp_path / "o.json"), board)
    noted = _learned(grid_doc, "noted")
    noted["notes"] = "a | b <script> [x](y)"
    submit(_write(noted, tmp_path / "n.json"), board)
    # a hand-edited CSV cell must not reach the output unescaped
    csv_path = board / "DarkRoom-v0__online-v1.csv"
    text = csv_path.read_text().replace("existing", "=evil", 1)
    csv_path.write_text(text)
    readme = render(board, tmp_path / "plots").read_text()
    table = readme.split("### DarkRoom-v0")[1].split("###")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert "oracle" in lines[1] and "evil" in lines[2]  # oracle first: higher is better
    assert "| '=evil v1 |" in lines[2]
    assert "| ` a \\| b <script> [x](y) ` |" in readme  # inert inside a code span
    assert "budget" not in readme and "the optimal policy that knows the task" in lines[1]
    assert "### BernoulliBandit-v0\\_\\_online-v1" in readme
    for track in ("DarkRoom-v0__online-v1", "BernoulliBandit-v0__online-v1"):
        png = tmp_path / "plots" / f"{track}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_one_episode_curve_is_drawn_as_a_point_with_its_interval() -> None:
    """A zero-shot track has one episode: a line of one point would draw nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_curve(ax, "dt v1", np.array([0.36]), np.array([0.32]), np.array([0.40]), offset=0.1)
    draw_curve(ax, "ad v1", np.array([0.1, 0.5]), np.array([0.0, 0.4]), np.array([0.2, 0.6]))
    point, line = ax.lines[0], ax.lines[-1]
    assert point.get_marker() == "o" and point.get_xydata().tolist() == [[1.1, 0.36]]
    bars = ax.containers[0].lines[2][0].get_segments()  # the error bar's vertical segment
    assert np.allclose(bars[0], [[1.1, 0.32], [1.1, 0.40]])
    assert line.get_xydata().tolist() == [[1.0, 0.1], [2.0, 0.5]] and len(ax.collections) == 2
    plt.close(fig)


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
    got = res.metrics(seeds_are_runs=True)  # a reference agent: its seeds are its runs
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
    doc = _learned(grid_doc, "existing")
    first = doc["returns"][0][0][0][0]
    doc["returns"][0][0][0][0] = -0.0 if first == 0 else first
    _assert_rejected(_write(doc, tmp_path / "negzero.json"), board, "result_id")
    # a bandit result is its pulls: nudging the sampled returns is the same result
    doc = copy.deepcopy(bandit_doc)
    doc["returns"] = (np.asarray(doc["returns"]) + 0.5).tolist()
    _assert_rejected(_write(doc, tmp_path / "nudged.json"), board, "result_id")


def test_oversized_claims_and_non_finite_config_are_named(
    grid_doc: Doc, board: Path, tmp_path: Path
) -> None:
    doc = _learned(grid_doc, "claims")
    doc["aggregates"] = {"nauc": {"mean": 10**400}}
    _assert_rejected(_write(doc, tmp_path / "huge.json"), board, "aggregates.nauc.mean")
    doc = copy.deepcopy(grid_doc)
    doc["method"] = "nanconfig"
    doc["config"] = {"lr": float("nan")}
    _assert_rejected(_write(doc, tmp_path / "nan.json"), board, "config")


def test_point_robot_returns_are_bounded_by_the_exact_oracle(board: Path, tmp_path: Path) -> None:
    doc = _doc("cem", "PointRobot-v0")
    submit(_write(doc, tmp_path / "ok.json"), board)  # a real learner's row is accepted
    better = _learned(doc, "impossible")
    better["returns"][0][0][0][-1] = 0.0  # above the optimum (every return is negative)
    _assert_rejected(_write(better, tmp_path / "bad.json"), board, "returns")
    far = _learned(doc, "impossible")
    far["returns"][0][0][0][0] = -1e6  # farther than any 20 steps can go
    _assert_rejected(_write(far, tmp_path / "far.json"), board, "returns")


@pytest.fixture(scope="module")
def three_random_runs() -> list[Doc]:
    """Three evaluations of the random agent under different seeds: stand-ins for three training
    runs whose returns differ (no training in the test)."""
    return [_doc("random", "DarkRoom-v0", seeds=[3 * k, 3 * k + 1, 3 * k + 2]) for k in range(3)]


def test_three_training_runs_that_differ_get_an_interval_of_nonzero_width(
    three_random_runs: list[Doc], tmp_path: Path
) -> None:
    doc = _runs_of(three_random_runs, "learned")
    assert np.asarray(doc["returns"]).shape == (3, 3, 16, 100)
    v = validate(doc)
    assert v.runs == 3 and not v.reference
    _, row = submit(_write(doc, tmp_path / "r.json"), tmp_path / "lb")
    assert row["runs"] == "3" and row["seeds"] == "3"
    for name in ("mean", "iqm"):
        low, point, high = (
            float(row[f"normalized_final_{name}{s}"]) for s in ("_low", "", "_high")
        )
        assert low < point < high  # the runs differ, so the interval has width
    # the point is the mean over runs x tasks of each run's seed-averaged score
    returns = np.asarray(doc["returns"], dtype=np.float64)
    assert float(row["final_return_mean"]) == pytest.approx(returns[..., -10:].mean(), rel=1e-5)
    # one run of the same method: no variation between runs, so a zero-width interval
    single = validate(_runs_of(three_random_runs[:1], "learned")).summary["normalized_final"]
    assert single["iqm_low"] == single["iqm"] == single["iqm_high"]


def test_evaluation_seeds_are_averaged_within_a_run(three_random_runs: list[Doc]) -> None:
    """A learned run's evaluation seeds are averaged before the bootstrap; a reference agent's
    seeds are its runs."""
    learned = validate(_runs_of(three_random_runs, "learned")).summary["nauc"]
    reference = validate(three_random_runs[0]).summary["nauc"]
    from icrl_bench.eval import metrics
    from icrl_bench.registry import reference_returns

    ref = reference_returns("DarkRoom-v0")
    runs = np.asarray(_runs_of(three_random_runs, "x")["returns"], dtype=np.float64)
    per_run = metrics.nauc(metrics.normalized(runs, ref["random"], ref["oracle"])).mean(axis=1)
    assert learned["iqm"] == pytest.approx(metrics.iqm(per_run))  # [3 runs, 16 tasks]
    seeds = metrics.nauc(metrics.normalized(runs[0], ref["random"], ref["oracle"]))
    assert reference["iqm"] == pytest.approx(metrics.iqm(seeds))  # [3 seeds, 16 tasks]


def test_old_results_files_still_submit_as_one_run(
    grid_doc: Doc, bandit_doc: Doc, tmp_path: Path
) -> None:
    board = tmp_path / "lb"
    learned = _v1(_learned(grid_doc, "ad"))
    learned["config"] = {"model": {"d_model": 8}, "train": {"steps": 1, "seed": 4}}
    learned["config_sha256"] = config_sha256(learned["config"])
    assert np.asarray(learned["returns"]).shape == (3, 16, 100) and "runs" not in learned
    v = validate(learned)
    assert v.runs == 1 and v.result["runs"][0]["train_seed"] == 4
    assert v.result["config"] == {"model": {"d_model": 8}, "train": {"steps": 1}}
    _, row = submit(_write(learned, tmp_path / "ad.json"), board)
    assert row["runs"] == "1" and row["seeds"] == "3"
    # a reference agent's old file: its evaluation seeds are its runs, as before
    _, row = submit(_write(_v1(bandit_doc), tmp_path / "ucb.json"), board)
    assert row["runs"] == "3"
    # the old file keeps its id: the same result in the new layout is already on the board
    with pytest.raises(SubmissionError, match="already on"):
        submit(_write(bandit_doc, tmp_path / "ucb2.json"), board)
    # and the stored old file resubmits to the same row
    stored = board / "results" / "DarkRoom-v0__online-v1" / f"{v.result_id}.json.gz"
    _, again = submit(stored, tmp_path / "other")
    assert again == {**read_track(board / "DarkRoom-v0__online-v1.csv")[0]}


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("repeated training seed", "runs.1.train_seed"),
        ("another config", "runs.2.config_sha256"),
        ("another dataset", "runs.1.dataset_sha256"),
    ],
)
def test_runs_of_a_result_are_independent_runs_of_one_config(
    case: str, field: str, three_random_runs: list[Doc], board: Path, tmp_path: Path
) -> None:
    doc = _runs_of(three_random_runs, "learned")
    if case == "repeated training seed":
        doc["runs"][1]["train_seed"] = doc["runs"][0]["train_seed"]
    elif case == "another config":
        doc["runs"][2] = _run(2, {"model": {"d_model": 16}, "train": {"steps": 1}}).to_json()
    else:
        doc["runs"][1]["dataset_sha256"] = "1" * 64
    _assert_rejected(_write(doc, tmp_path / "bad.json"), board, field)


def test_cli_refuses_runs_that_repeat_a_seed_in_one_line(
    three_random_runs: list[Doc], board: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _runs_of(three_random_runs, "learned")
    doc["runs"][2]["train_seed"] = 0
    before = _snapshot(board)
    assert main(["submit", str(_write(doc, tmp_path / "r.json")), "--leaderboard-dir", str(board)])
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "training seed 0 is repeated" in err
    assert _snapshot(board) == before


def test_one_current_row_per_method_and_the_rendered_table(
    grid_doc: Doc, three_random_runs: list[Doc], tmp_path: Path
) -> None:
    board = tmp_path / "lb"
    oracle = _doc("oracle", "DarkRoom-v0")
    qlearning = _doc("qlearning", "DarkRoom-v0")
    submit(_write(grid_doc, tmp_path / "random.json"), board)
    submit(_write(oracle, tmp_path / "oracle.json"), board)
    submit(_write(qlearning, tmp_path / "q.json"), board)
    one = _runs_of(three_random_runs[:1], "mine")
    three = _runs_of(three_random_runs, "mine")
    later_one = _runs_of(three_random_runs[1:2], "mine")
    _, r1 = submit(_write(one, tmp_path / "one.json"), board)
    _, r3 = submit(_write(three, tmp_path / "three.json"), board)
    _, r1b = submit(_write(later_one, tmp_path / "later.json"), board)
    solo = _runs_of(three_random_runs[2:], "solo")
    submit(_write(solo, tmp_path / "solo.json"), board)
    rows = {r["result_id"]: r for r in read_track(board / "DarkRoom-v0__online-v1.csv")}
    assert len(rows) == 7  # the CSV keeps the history
    # most runs wins over the later submission; the others point to it
    assert rows[r3["result_id"]]["superseded_by"] == ""
    assert rows[r1["result_id"]]["superseded_by"] == r3["result_id"]
    assert rows[r1b["result_id"]]["superseded_by"] == r3["result_id"]
    readme = render(board, plots=False).read_text()
    table = readme.split("### DarkRoom-v0")[1]
    lines = [line for line in table.splitlines() if line.startswith("| ") and " v1 |" in line]
    methods = [line.split("|")[2].strip() for line in lines]
    assert sorted(methods) == ["mine v1", "oracle v1", "qlearning v1", "random v1", "solo v1"]
    header = table.splitlines()[2]
    assert "P(improvement over qlearning)" in header  # the best reference other than the oracle
    mine = lines[methods.index("mine v1")]
    assert "| 3 |" in mine and r3["result_id"] in mine
    p = mine.split("|")[header.split("|").index(" P(improvement over qlearning) ")].strip()
    point, low, high = (float(x) for x in re.findall(r"-?\d+\.\d+", p))
    assert low <= point <= high and point < 0.5  # random-like runs lose to Q-learning
    solo_line = lines[methods.index("solo v1")]
    assert "| 1 ⚠ |" in solo_line and "[1 run]" in solo_line  # flagged, and no interval
    assert "| 3 (seeds) |" in lines[methods.index("random v1")]
    assert "History: 7 rows in" in table and "2 superseded" in table


def test_migrate_adds_runs_and_keeps_every_row(
    grid_doc: Doc, three_random_runs: list[Doc], tmp_path: Path
) -> None:
    """A track CSV written before runs were counted: ``migrate`` adds ``runs`` and
    ``superseded_by`` and recomputes each row from its stored result; no row is dropped."""
    board = tmp_path / "lb"
    old_columns = [c for c in COLUMNS if c not in ("runs", "superseded_by")]
    docs = [grid_doc, _v1(_learned(three_random_runs[1], "ad")), _v1(_learned(grid_doc, "ad"))]
    for i, doc in enumerate(docs):
        submit(_write(doc, tmp_path / f"{i}.json"), board)
    csv_path = board / "DarkRoom-v0__online-v1.csv"
    new_rows = read_track(csv_path)
    with csv_path.open("w", newline="") as f:  # the old layout, with the old eval-seed CIs
        writer = csv.DictWriter(f, fieldnames=old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, "normalized_final_iqm_low": "-9"} for r in new_rows)
    old = read_track(csv_path)  # readable as it is, runs filled in
    assert [r["runs"] for r in old] == ["3", "1", "1"]
    assert migrate(board) == ["DarkRoom-v0__online-v1"]
    rows = read_track(csv_path)
    assert [r["result_id"] for r in rows] == [r["result_id"] for r in new_rows]
    assert rows == new_rows  # recomputed: the -9 is gone
    assert [r["superseded_by"] for r in rows] == ["", new_rows[2]["result_id"], ""]
    assert migrate(board) == []  # already migrated


def test_shipped_leaderboards_have_runs_and_consistent_intervals() -> None:
    """Every row of the repository's leaderboards has ``runs``; every interval holds its point;
    the random agent normalises to about 0."""
    root = Path(__file__).resolve().parent.parent / "leaderboards"
    csvs = sorted(root.glob("*__*.csv"))
    assert csvs
    for path in csvs:
        with path.open(newline="") as f:
            assert next(csv.reader(f)) == list(COLUMNS), path.name
        for r in read_track(path):
            assert int(r["runs"]) >= 1, (path.name, r["method"])
            for column in COLUMNS:
                if column.endswith(("_mean", "_iqm")) and r[column]:
                    low, high = float(r[f"{column}_low"]), float(r[f"{column}_high"])
                    assert low <= float(r[column]) <= high, (path.name, r["method"], column)
            if r["method"] == "random":
                for column in ("normalized_final_mean", "nauc_mean"):
                    assert abs(float(r[column])) < 0.05, (path.name, column, r[column])
