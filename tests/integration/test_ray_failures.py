"""The Ray runtime when a peer fails: a worker refuses a call, dies or hangs; a program
runner dies; the scheduler dies; a plain-function step outlives its program. Each time
the user gets a clear error naming the problem, and nothing else is lost: the other
programs finish, and no call is left waiting."""
from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import pytest
import ray
import ray.cloudpickle

from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from tests.integration import programs_for_tests as progs

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]
ray.cloudpickle.register_pickle_by_value(progs)

WAIT_S = 60.0  # the longest any condition below is waited for


def wait_for(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def in_background(fn):
    """Run `fn` in a thread; returns a join() that re-raises what it raised."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as error:  # surfaced by join()
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join():
        thread.join(WAIT_S * 3)
        assert not thread.is_alive(), "the run did not end"
        if "error" in box:
            raise box["error"]
        return box["value"]
    return join


def config(tmp_path, **fields) -> RuntimeConfig:
    return RuntimeConfig(**{"workers": 2, "time_scale": 1.0, "runners": 2,
                            "trace_dir": tmp_path, **fields})


def running_on(runtime: Runtime, worker_id: str) -> int:
    metrics = ray.get(runtime.scheduler.metrics.remote(), timeout=30)
    w = metrics["workers"].get(worker_id, {})
    return w.get("running", 0) + w.get("queued", 0)


def test_a_call_the_engine_refuses_fails_its_program_by_name_and_frees_its_place(
        ray_cluster, tmp_path):
    with Runtime(config(tmp_path)) as rt:
        report = rt.run(progs.greedy, [{}])
        [result] = report.results
        assert result.status == "failed"
        assert "can never fit worker" in result.error and "lower max_tokens" in result.error
        summary = rt.scheduler_counters()
        assert summary["inflight"] == 0 and summary["queued"] == 0
        # the cluster goes on serving
        report = rt.run(progs.steady, [{"topic": "after", "turns": 1, "tool_s": 0.0}])
        assert [r.status for r in report.results] == ["succeeded"]


def test_a_plain_step_that_outlives_its_program_cannot_call_the_model(ray_cluster, tmp_path):
    with Runtime(config(tmp_path)) as rt:
        report = rt.run(progs.overslept, {"seconds": 1.5})
        [result] = report.results
        assert result.status == "deadline_missed"
        before = rt.scheduler_counters()["submitted"]
        time.sleep(2.0)  # the thread wakes and tries to call: fenced
        assert rt.scheduler_counters()["submitted"] == before == 0


def test_a_worker_that_dies_mid_run_loses_no_program(ray_cluster, tmp_path):
    with Runtime(config(tmp_path, workers=3, max_concurrent_programs=12)) as rt:
        inputs = [{"topic": f"t{i}", "turns": 4} for i in range(12)]
        rt.start()
        join = in_background(lambda: rt.run(progs.steady, inputs))
        victim_id, victim = "w1", rt._workers[1]
        wait_for(lambda: running_on(rt, victim_id) >= 2, "calls on w1")
        ray.kill(victim, no_restart=True)
        report = join()
        assert [r.status for r in report.results] == ["succeeded"] * 12
        summary = rt.scheduler_counters()
        assert list(summary["lost_workers"]) == [victim_id]
        assert "died" in summary["lost_workers"][victim_id]
        assert summary["rerouted"] >= 1 and summary["inflight"] == 0
        rt.check_integrity()


def test_a_worker_that_hangs_leaves_routing_after_the_health_timeout(ray_cluster, tmp_path):
    cfg = config(tmp_path, workers=2, max_concurrent_programs=6, worker_health_timeout_s=2.0)
    with Runtime(cfg) as rt:
        inputs = [{"topic": f"t{i}", "turns": 3} for i in range(6)]
        rt.start()
        join = in_background(lambda: rt.run(progs.steady, inputs))
        victim = rt._workers[0]
        pid = ray.get(victim.process_id.remote(), timeout=30)
        wait_for(lambda: running_on(rt, "w0") >= 1, "calls on w0")
        os.kill(pid, signal.SIGSTOP)
        try:
            report = join()
        finally:
            os.kill(pid, signal.SIGCONT)
        assert [r.status for r in report.results] == ["succeeded"] * 6
        lost = rt.scheduler_counters()["lost_workers"]
        assert list(lost) == ["w0"] and "did not answer a health check within 2 s" in lost["w0"]


def test_a_runner_that_dies_fails_only_its_programs_and_is_replaced(ray_cluster, tmp_path):
    with Runtime(config(tmp_path, runners=2, max_concurrent_programs=4)) as rt:
        ids = [f"p{i}" for i in range(8)]
        inputs = [{"topic": i, "turns": 1, "tool_s": 3.0} for i in ids]
        rt.start()
        join = in_background(lambda: rt.run(progs.steady, inputs, program_ids=ids))
        # the first four are launched round robin: p0 and p2 on runner 0
        wait_for(lambda: rt.scheduler_counters()["completed"] >= 4, "the first calls to finish")
        ray.kill(rt._runners[0], no_restart=True)
        report = join()
        status = {r.program_id: r.status for r in report.results}
        assert status == {**{i: "succeeded" for i in ids}, "p0": "failed", "p2": "failed"}
        for result in report.results[:3:2]:
            assert "its program runner died" in result.error and "run it again" in result.error
        summary = rt.scheduler_counters()
        assert summary["inflight"] == 0 and summary["queued"] == 0


def test_when_the_scheduler_dies_every_program_ends_with_the_reason(ray_cluster, tmp_path):
    with Runtime(config(tmp_path, max_concurrent_programs=4)) as rt:
        inputs = [{"topic": f"t{i}", "turns": 3, "tool_s": 0.5} for i in range(6)]
        rt.start()
        join = in_background(lambda: rt.run(progs.steady, inputs))
        wait_for(lambda: rt.scheduler_counters()["completed"] >= 2, "the first calls to finish")
        ray.kill(rt.scheduler, no_restart=True)
        started = time.monotonic()
        report = join()
        assert time.monotonic() - started < 30
        assert [r.status for r in report.results] == ["failed"] * 6
        assert all("the scheduler actor is gone" in r.error for r in report.results)
        # Failed for the run's sake, not their own: none is final, a resume runs them.
        with sqlite3.connect(rt.run_dir / "journal.sqlite") as db:
            final = db.execute("SELECT program_id FROM agentrt_programs WHERE is_final = 1")
            assert final.fetchall() == []
            assert db.execute("SELECT count(*) FROM agentrt_programs").fetchone() == (6,)
