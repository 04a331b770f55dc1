"""Baseline suites: one command runs baselines x families x seeds, locally or on Ray.

A suite file (``baselines/suites/<name>.yaml``) declares a grid:

.. code-block:: yaml

    name: smoke
    description: what it is for
    baselines: [ad, dpt, dt, meta-dt, t2mir-ad, t2mir-dpt]
    reference_agents: [random, oracle]     # evaluated beside the baselines
    protocols: [online-v1]                 # every run is evaluated under each
    train_seeds: [0, 1, 2]                 # one training run per seed; each (method, track)
                                           # gets one result holding all of them
    eval_seeds: [0, 1, 2]                  # the seeds of every results file
    smoke: true                            # apply each config's smoke: section
    families:
      DarkRoom-v0:
        variant: ad-eps                    # the training dataset variant
        variants: {dpt: uniform-rollin}    # optional: per-method variants
        scale: smoke
        scales: {dpt: paper}               # optional: per-method scales
        data_set: [episodes=60]            # optional: dataset recipe overrides
        data_sets: {dpt: [episodes=2000]}  # optional: per-method recipe overrides
        configs: {ad: reproductions/ad-eps-DarkRoom-v0.yaml}  # optional: other config files
        baselines: [ad, dpt]               # optional: a subset where the others do not apply
        reference_agents: [random, oracle, qlearning]   # optional: replaces the default
        protocols: {dt: [online-v1, zero-shot-v1]}      # optional: per-method (or per
                                                        # reference agent) protocols
    overrides:                             # --set overrides: "all", a method, or method@Family
      all: [train.checkpoint_every=30]
      dt@PointRobot-v0: [train.lr=1e-3]
    resources:                             # per job, for Ray (the local pool runs one per worker)
      train: {cpus: 1, gpus: 0}
      evaluate: {cpus: 1}
    submit_to: leaderboards                # or run-dir: <run dir>/leaderboards (trial runs)

The grid expands into jobs with dependencies: generate each dataset once (a training dataset is
shared by every run that uses it; the prompt datasets of prompted protocols too), train a
locomotion family's SAC expert references once (its scores need them; cached across runs),
train one run per training seed, evaluate all of a method's runs on a family into one result
(its leaderboard row aggregates over the independent runs), submit. :func:`run_suite` runs them
on a local process pool or on Ray, records every job's state in the run directory
(``state.json``, rewritten atomically after each job) and its output in ``logs/<job>.log``, so
that ``resume`` skips finished jobs after a crash. A failed job is reported with its log path
and only the jobs that depend on it are skipped. Submission is idempotent (a result already on
its track counts as submitted), so a resumed run never duplicates a row. At the end the
leaderboard is rendered.

Every job runs with one torch thread (``OMP_NUM_THREADS=1``): with the same seeds, the local and
the Ray executor produce the same results.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

import baselines
from baselines.methods import METHODS
from icrl_bench import workflow
from icrl_bench.data.catalogue import variant as variant_recipe
from icrl_bench.data.store import home
from icrl_bench.errors import IcrlBenchError
from icrl_bench.eval.agents import REFERENCE_AGENTS
from icrl_bench.eval.protocols import PROTOCOLS, setting
from icrl_bench.leaderboard import AlreadySubmitted, render
from icrl_bench.leaderboard import leaderboard_dir as default_lb
from icrl_bench.registry import family
from icrl_bench.workers import die_with_parent

#: the shipped suites and baseline configs, in the baselines package
SUITE_DIR = Path(baselines.__file__).resolve().parent / "suites"
CONFIG_DIR = Path(baselines.__file__).resolve().parent / "configs"
STATE = "state.json"
#: the kinds of job, in the order a suite runs them
JOB_KINDS = ("data", "references", "train", "evaluate", "submit")
#: the function that runs a job of each kind (its ``Job.call`` holds the keyword arguments)
JOBS: dict[str, Callable[..., Any]] = {
    "data": workflow.generate,
    "references": workflow.references,
    "train": workflow.train,
    "evaluate": workflow.evaluate_to_file,
    "submit": workflow.submit,
}


class SuiteError(IcrlBenchError):
    """A suite file or run directory is invalid."""


@dataclass
class Job:
    """One unit of work.

    Attributes:
        id: unique within the suite, e.g. ``train/dt/PointRobot-v0/histories/seed0``.
        kind: ``data``, ``references``, ``train``, ``evaluate`` or ``submit``.
        argv: the equivalent ``icrl-bench`` command line (written to the job's log, to rerun
            it by hand).
        call: the keyword arguments of the :mod:`icrl_bench.workflow` function of its kind,
            which is what runs it.
        deps: ids of the jobs that must finish first.
        cpus: CPUs it needs (Ray resources).
        gpus: GPUs it needs (Ray resources).
        output: the file or directory it produces, if any.
    """

    id: str
    kind: str
    argv: list[str]
    call: dict[str, Any]
    deps: list[str] = field(default_factory=list)
    cpus: float = 1.0
    gpus: float = 0.0
    output: str = ""

    @property
    def log_name(self) -> str:
        """The job's log file name (``/`` becomes ``__``)."""
        return re.sub(r"[^A-Za-z0-9_.=-]+", "__", self.id) + ".log"


# -- suite files ---------------------------------------------------------------------------------
def suite_path(name: str) -> Path:
    """A shipped suite by name, or a path to a suite file."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        return Path(name)
    return SUITE_DIR / f"{name}.yaml"


def read_suite(name: str) -> dict[str, Any]:
    """Read and check a suite file; a one-line :class:`SuiteError` names what is wrong."""
    path = suite_path(name)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in SUITE_DIR.glob("*.yaml")))
        raise SuiteError(f"no suite {name!r} (shipped: {known})") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise SuiteError(f"{path}: a suite must be a mapping")
    allowed = {
        "name", "description", "baselines", "reference_agents", "protocols", "train_seeds",
        "eval_seeds", "smoke", "families", "overrides", "resources", "notes", "submit_to",
    }  # fmt: skip
    unknown = set(doc) - allowed
    if unknown:
        raise SuiteError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    if not isinstance(doc.get("families"), dict) or not doc["families"]:
        raise SuiteError(f"{path}: 'families' must map family names to settings")
    for m in doc.get("baselines") or []:
        if m not in METHODS:
            raise SuiteError(f"{path}: unknown baseline {m!r} (known: {', '.join(METHODS)})")
    for name_, fam in doc["families"].items():
        family(name_)  # an unknown family raises a one-line error
        fam = fam or {}
        if not isinstance(fam, dict):
            raise SuiteError(f"{path}: settings of {name_} must be a mapping")
        for a in [*(doc.get("reference_agents") or []), *(fam.get("reference_agents") or [])]:
            if a not in REFERENCE_AGENTS:
                raise SuiteError(f"{path}: unknown reference agent {a!r}")
        for m in fam.get("baselines") or []:
            if m not in METHODS:
                raise SuiteError(f"{path}: unknown baseline {m!r} in {name_}")
    for p in doc.get("protocols") or ["online-v1"]:
        if p not in PROTOCOLS:
            raise SuiteError(f"{path}: unknown protocol {p!r}")
    if doc.get("submit_to", "leaderboards") not in ("leaderboards", "run-dir"):
        raise SuiteError(f"{path}: submit_to must be 'leaderboards' or 'run-dir'")
    for key in ("train_seeds", "eval_seeds"):
        seeds = doc.get(key, [0])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise SuiteError(f"{path}: {key} must be a non-empty list of integers")
    return doc


#: what ``run_suite(..., tiny=True)`` appends to every training job, after the suite's own
#: overrides: a few updates of a few sequences, whatever the suite's budget
TINY_TRAIN = [
    "train.steps=20",
    "train.batch_size=8",
    "train.warmup_steps=2",
    "train.checkpoint_every=10",
    "train.log_every=10",
    "train.amp=false",
]


def tiny(doc: dict[str, Any]) -> dict[str, Any]:
    """A suite at the smallest size that still runs every training, evaluation and submission
    job: smoke-scale datasets (without the suite's recipe overrides), each config's smoke
    section, then :data:`TINY_TRAIN` on top of the suite's overrides, three evaluation seeds, no
    reference agents, and the suite's leaderboard in its run directory. For checking a suite
    meant for a GPU cluster end to end on a CPU."""
    out = {**doc, "smoke": True, "submit_to": "run-dir", "reference_agents": []}
    drop = ("scale", "scales", "data_set", "data_sets", "reference_agents")
    out["families"] = {
        name: {k: v for k, v in (fam or {}).items() if k not in drop}
        | {"scale": "smoke", "reference_agents": []}
        for name, fam in doc["families"].items()
    }
    out["eval_seeds"] = list(doc.get("eval_seeds", [0, 1, 2]))[:3]  # the protocols' minimum
    out["tiny_overrides"] = TINY_TRAIN  # applied after every other override
    out["resources"] = {"train": {"cpus": 1}, "evaluate": {"cpus": 1}}
    out["notes"] = f"{doc.get('notes') or doc.get('name', 'suite')} (tiny check run)"
    return out


def _overrides(doc: dict[str, Any], method: str, fam: str) -> list[str]:
    over = doc.get("overrides") or {}
    out: list[str] = []
    for key in ("all", method, f"{method}@{fam}"):
        out += [str(v) for v in over.get(key) or []]
    return out + [str(v) for v in doc.get("tiny_overrides") or []]


def expand(doc: dict[str, Any], run_dir: Path, leaderboard_dir: Path) -> list[Job]:
    """The suite's grid as jobs in dependency order (datasets first, shared ones once)."""

    def variant_id(name: str) -> str:
        return variant_recipe(name).id  # the current version of the recipe

    res = doc.get("resources") or {}
    train_res = {"cpus": 1.0, "gpus": 0.0, **(res.get("train") or {})}
    eval_res = {"cpus": 1.0, "gpus": 0.0, **(res.get("evaluate") or {})}
    eval_seeds = [str(s) for s in doc.get("eval_seeds", [0])]
    jobs: dict[str, Job] = {}

    def add(job: Job) -> str:
        jobs.setdefault(job.id, job)
        return job.id

    def data_job(fam: str, variant: str, scale: str, seed: int, sets: list[str]) -> str:
        argv = ["data", "generate", fam, "--variant", variant, "--scale", scale]
        argv += ["--seed", str(seed), *(x for s in sets for x in ("--set", s))]
        call = {"env_id": fam, "variant": variant, "scale": scale, "seed": seed, "sets": sets}
        return add(Job(f"data/{fam}/{variant}/{scale}/seed{seed}", "data", argv, call))

    def references_deps(fam: str) -> list[str]:
        """A locomotion family's scores need its SAC experts: one job trains them (all its test
        tasks at once, on every core; nothing when cached). Smoke runs go unscored instead."""
        if doc.get("smoke") or family(fam).kind.references != "sac-expert":
            return []
        job = Job(f"references/{fam}", "references", ["data", "references", fam], {"env_id": fam})
        return [add(job)]

    def prompt_deps(fam: str, protocol: str) -> list[str]:
        st = setting(fam, protocol)
        if st.prompt_variant is None:
            return []
        sets = [f"episodes={st.prompt_episodes}"]
        return [data_job(fam, st.prompt_variant, "prompt", int(s), sets) for s in eval_seeds]

    def evaluate_and_submit(
        tag: str, agents: list[str], fam: str, protocol: str, deps: list[str], notes: str
    ) -> None:
        out = run_dir / "results" / f"{tag.replace('/', '__')}__{protocol}.json"
        argv = ["evaluate", "--agent", *agents, "--task", f"icrl_bench/{fam}"]
        argv += ["--protocol", protocol, "--seeds", *eval_seeds, "--out", str(out)]
        if notes:
            argv += ["--notes", notes]
        call = {
            "agent_name": agents,
            "env_id": f"icrl_bench/{fam}",
            "protocol_id": protocol,
            "seeds": [int(s) for s in eval_seeds],
            "out": str(out),
            "notes": notes,
        }
        ev = add(
            Job(
                f"evaluate/{tag}/{protocol}",
                "evaluate",
                argv,
                call,
                deps + prompt_deps(fam, protocol) + references_deps(fam),
                eval_res["cpus"],
                eval_res["gpus"],
                str(out),
            )
        )
        sub = ["submit", str(out), "--leaderboard-dir", str(leaderboard_dir)]
        call = {"result_path": str(out), "directory": str(leaderboard_dir)}
        add(Job(f"submit/{tag}/{protocol}", "submit", sub, call, [ev]))  # 1 CPU: the bootstrap

    notes = str(doc.get("notes", f"suite {doc.get('name', '')}")).strip()
    for fam, fs in doc["families"].items():
        fs = fs or {}
        protos = fs.get("protocols") or {}
        default_protocols = list(doc.get("protocols") or ["online-v1"])
        for agent in fs.get("reference_agents") or doc.get("reference_agents") or []:
            for protocol in protos.get(agent) or default_protocols:
                # a reference row is described by its agent, not by the suite's budget notes
                evaluate_and_submit(f"{agent}/{fam}", [agent], fam, protocol, [], "")
        methods = fs.get("baselines") or doc.get("baselines") or []
        for method in methods:
            variant = str((fs.get("variants") or {}).get(method) or fs.get("variant") or "")
            if not variant:
                raise SuiteError(f"{fam}: no dataset variant for {method}")
            scale = str((fs.get("scales") or {}).get(method) or fs.get("scale", "smoke"))
            data_seed = int(fs.get("data_seed", 0))
            sets = (fs.get("data_sets") or {}).get(method, fs.get("data_set")) or []
            ds = data_job(fam, variant, scale, data_seed, [str(s) for s in sets])
            dataset_id = f"{fam}/{variant_id(variant)}/{scale}-seed{data_seed}"
            checkpoints, trained = [], []
            for seed in doc.get("train_seeds", [0]):
                tag = f"{method}/{fam}/{variant}/seed{seed}"
                ckpt = run_dir / "checkpoints" / tag.replace("/", "__")
                argv = ["train", method, "--task", f"icrl_bench/{fam}", "--dataset", dataset_id]
                argv += ["--out", str(ckpt), "--no-progress", "--set", f"train.seed={seed}"]
                config = (fs.get("configs") or {}).get(method)
                if config:  # a config file other than the shipped one, relative to configs/
                    argv += ["--config", str(CONFIG_DIR / str(config))]
                if doc.get("smoke"):
                    argv.append("--smoke")
                for s in _overrides(doc, method, fam):
                    argv += ["--set", s]
                call = {
                    "method_name": method,
                    "env_id": f"icrl_bench/{fam}",
                    "dataset_id": dataset_id,
                    "out": str(ckpt),
                    "sets": [f"train.seed={seed}", *_overrides(doc, method, fam)],
                    "config": str(CONFIG_DIR / str(config)) if config else None,
                    "smoke": bool(doc.get("smoke")),
                }
                checkpoints.append(str(ckpt))
                trained.append(
                    add(
                        Job(
                            f"train/{tag}",
                            "train",
                            argv,
                            call,
                            [ds],
                            train_res["cpus"],
                            train_res["gpus"],
                            str(ckpt),
                        )
                    )
                )
            # one result per method and track, holding every training run
            for protocol in protos.get(method) or default_protocols:
                tag = f"{method}/{fam}/{variant}"
                evaluate_and_submit(tag, checkpoints, fam, protocol, trained, notes)
    order = {k: i for i, k in enumerate(JOB_KINDS)}
    return sorted(jobs.values(), key=lambda j: order[j.kind])


# -- running one job -----------------------------------------------------------------------------
def run_job(job: dict[str, Any], home: str, log_path: str) -> dict[str, Any]:
    """Run one job in this process: ``icrl-bench ARGV`` with its output in ``log_path``.

    Returns ``{"state": "done" | "failed", "seconds": ..., "error": ...}``; never raises.
    """
    os.environ["ICRL_BENCH_HOME"] = home
    os.environ["OMP_NUM_THREADS"] = "1"
    start = time.perf_counter()
    state, error = "failed", ""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        log.write(f"+ icrl-bench {' '.join(job['argv'])}\n")
        log.flush()
        try:
            # a job runs in a pool worker that has not imported torch yet (about 2 s): the
            # thread limit applies before the first training or checkpoint evaluation
            import torch

            torch.set_num_threads(1)
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                JOBS[job["kind"]](**job["call"])
            state = "done"
        except AlreadySubmitted:  # submitted by an earlier, interrupted run: idempotent
            state = "done"
            log.write("(already submitted)\n")
        except IcrlBenchError as exc:  # bad input: its one-line message is the job's error
            log.write(f"icrl-bench: error: {exc}\n")
            error = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        except BaseException as exc:  # a job's failure must never take the runner down
            log.write(traceback.format_exc())
            error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        log.write(f"\n{state} in {time.perf_counter() - start:.1f} s\n")
    return {"state": state, "seconds": round(time.perf_counter() - start, 2), "error": error}


# -- run directories -----------------------------------------------------------------------------
def read_state(run_dir: Path) -> dict[str, Any]:
    """The run directory's ``state.json`` (empty when there is none)."""
    try:
        return dict(json.loads((run_dir / STATE).read_text()))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{run_dir / STATE}: unreadable ({exc})") from None


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".state.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, run_dir / STATE)


# -- executors -----------------------------------------------------------------------------------
class LocalExecutor:
    """A pool of ``workers`` processes (spawned: each imports torch once and keeps it).

    The workers die with the runner (:func:`die_with_parent`).
    """

    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        self.running: dict[Future[dict[str, Any]], str] = {}

    def submit(self, job: Job, home: str, log: str) -> None:
        """Start a job."""
        self.running[self.pool.submit(run_job, asdict(job), home, log)] = job.id

    def wait(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(job id, outcome)`` of the jobs that finish next."""
        done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
        for fut in done:
            job_id = self.running.pop(fut)
            try:
                yield job_id, fut.result()
            except Exception as exc:  # the worker process died (killed, out of memory)
                yield job_id, {"state": "failed", "seconds": 0.0, "error": f"worker died: {exc}"}

    def close(self) -> None:
        """Shut the pool down."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Jobs as Ray tasks with their CPU and GPU requirements.

    Args:
        address: a cluster to join (``ray.init(address=...)``); ``None`` starts a local one with
            ``workers`` CPUs.
        workers: CPUs of a local cluster.
    """

    def __init__(self, address: str | None, workers: int) -> None:
        try:  # the optional ray extra
            import ray
        except ImportError:
            raise SuiteError("--executor ray needs Ray: pip install 'icrl-bench[ray]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            self.started = True
        self.remote = ray.remote(run_job)
        self.running: dict[Any, str] = {}

    def submit(self, job: Job, home: str, log: str) -> None:
        """Start a job as a Ray task."""
        opts = {"num_cpus": job.cpus, "num_gpus": job.gpus, "max_retries": 0}
        ref = self.remote.options(**opts).remote(asdict(job), home, log)
        self.running[ref] = job.id

    def wait(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(job id, outcome)`` of the jobs that finish next."""
        ready, _ = self.ray.wait(list(self.running), num_returns=1)
        for ref in ready:
            job_id = self.running.pop(ref)
            try:
                yield job_id, self.ray.get(ref)
            except Exception as exc:  # the task's worker died
                yield job_id, {"state": "failed", "seconds": 0.0, "error": f"worker died: {exc}"}

    def close(self) -> None:
        """Leave the cluster (and stop it if this run started it)."""
        if self.started:
            self.ray.shutdown()


# -- the scheduler -------------------------------------------------------------------------------
@dataclass
class SuiteReport:
    """What a suite run did.

    Attributes:
        run_dir: the run directory.
        jobs: the suite's jobs.
        state: job id -> ``{"state", "seconds", "error", "log"}``.
        ran: ids of the jobs this invocation ran (a resumed run skips finished ones).
        seconds: wall time of this invocation.
    """

    run_dir: Path
    jobs: list[Job]
    state: dict[str, Any]
    ran: list[str]
    seconds: float

    def count(self, state: str) -> int:
        """Jobs in ``state``."""
        return sum(1 for s in self.state.values() if s.get("state") == state)

    @property
    def ok(self) -> bool:
        """Every job finished."""
        return all(self.state.get(j.id, {}).get("state") == "done" for j in self.jobs)


def run_suite(
    suite: str,
    run_dir: str | os.PathLike[str] | None = None,
    executor: str = "local",
    workers: int = 2,
    resume: bool = False,
    leaderboard_dir: str | os.PathLike[str] | None = None,
    address: str | None = None,
    progress: bool = True,
    on_job: Callable[[str, dict[str, Any]], None] | None = None,
    tiny_run: bool = False,
) -> SuiteReport:
    """Run a suite: every job once its dependencies are done, as many at a time as workers.

    Args:
        suite: a shipped suite name or a suite file.
        run_dir: where state, logs, checkpoints and results go (default
            ``$ICRL_BENCH_HOME/suites/<name>``).
        executor: ``"local"`` (a process pool) or ``"ray"``.
        workers: parallel jobs (local) or CPUs of a local Ray cluster.
        resume: continue the run in ``run_dir``, skipping finished jobs; without it, a run
            directory that already holds a run is an error.
        leaderboard_dir: where results are submitted (default ``./leaderboards``, or
            ``<run_dir>/leaderboards`` for a suite with ``submit_to: run-dir``).
        address: the Ray cluster to join (default: start a local one).
        progress: show a progress bar.
        on_job: called with ``(job id, outcome)`` as each job finishes.
        tiny_run: run the suite at its smallest size (:func:`tiny`), e.g. to check a GPU suite
            on a CPU; its run directory defaults to ``.../suites/<name>-tiny``.

    Raises:
        SuiteError: a bad suite file, a bad executor, or an existing run without ``resume``.
    """
    if executor not in ("local", "ray"):
        raise SuiteError(f"unknown executor {executor!r} (local or ray)")
    if workers < 1:
        raise SuiteError("workers must be at least 1")
    doc = read_suite(suite)
    name = str(doc.get("name") or suite_path(suite).stem)
    if tiny_run:
        doc, name = tiny(doc), f"{name}-tiny"
    out = Path(run_dir) if run_dir else home() / "suites" / name
    if leaderboard_dir is None and doc.get("submit_to") == "run-dir":
        leaderboard_dir = out / "leaderboards"
    lb = default_lb(leaderboard_dir)
    state = read_state(out)
    if state and not resume:
        raise SuiteError(f"{out} already holds a run of this suite; pass --resume to continue it")
    jobs = expand(doc, out.resolve(), lb.resolve())
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    (out / "suite.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    by_id = {j.id: j for j in jobs}
    status = {j: s for j, s in (state.get("jobs") or {}).items() if j in by_id}
    for job_id, s in list(status.items()):  # anything unfinished runs again
        if s.get("state") != "done":
            del status[job_id]
    start = time.perf_counter()
    ran: list[str] = []
    home_dir = str(home())
    pool: LocalExecutor | RayExecutor = (
        LocalExecutor(workers) if executor == "local" else RayExecutor(address, workers)
    )
    bar = tqdm(total=len(jobs), initial=len(status), desc=f"suite {name}", disable=not progress)

    def save() -> None:
        _write_state(out, {"suite": name, "jobs": status})

    def record(job_id: str, outcome: dict[str, Any]) -> None:
        outcome["log"] = str(out / "logs" / by_id[job_id].log_name)
        status[job_id] = outcome
        ran.append(job_id)
        save()
        bar.update(1)
        if outcome["state"] == "failed":
            bar.write(f"FAILED {job_id}: {outcome['error']} (log: {outcome['log']})")
        if on_job is not None:
            on_job(job_id, outcome)

    try:
        save()
        waiting = [j for j in jobs if j.id not in status]
        while waiting or pool.running:
            for job in list(waiting):
                dep_states = [status.get(d, {}).get("state") for d in job.deps]
                if any(s in ("failed", "skipped") for s in dep_states):
                    waiting.remove(job)
                    bad = [d for d in job.deps if status[d]["state"] in ("failed", "skipped")]
                    record(job.id, {"state": "skipped", "seconds": 0.0,
                                    "error": f"dependency {bad[0]} did not finish"})  # fmt: skip
                elif all(s == "done" for s in dep_states):
                    waiting.remove(job)
                    pool.submit(job, home_dir, str(out / "logs" / job.log_name))
            if pool.running:
                for job_id, outcome in pool.wait():
                    record(job_id, outcome)
            elif waiting:  # nothing runs and nothing can start: a dependency is missing
                raise SuiteError(f"job {waiting[0].id} waits on a job that never runs")
    finally:
        bar.close()
        pool.close()
    render(lb, plots=True)
    return SuiteReport(out, jobs, status, ran, time.perf_counter() - start)


def summary_table(report: SuiteReport) -> str:
    """A plain-text table of every job's state, time and (for failures) error and log."""
    lines = [f"{'state':8} {'seconds':>8}  job"]
    for job in report.jobs:
        s = report.state.get(job.id, {})
        line = f"{s.get('state', 'not run'):8} {s.get('seconds', 0.0):8.1f}  {job.id}"
        if s.get("state") in ("failed", "skipped"):
            line += f"\n{'':18}{s.get('error', '')} (log: {s.get('log', '')})"
        lines.append(line)
    done, failed, skipped = (report.count(k) for k in ("done", "failed", "skipped"))
    lines.append(
        f"{done} done, {failed} failed, {skipped} skipped of {len(report.jobs)} jobs; "
        f"{len(report.ran)} ran in {report.seconds:.0f} s; run directory {report.run_dir}"
    )
    return "\n".join(lines)
