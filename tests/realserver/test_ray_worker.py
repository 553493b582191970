"""The OpenAI engine inside the Ray worker actor, unchanged: the actor starts it as a
realtime engine, carries out a Send and an Abort, and reports the RequestDone."""
from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from agentrt.runtime import wire
from agentrt.runtime.cluster import commands as cmd
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.engines.openai import OpenAIEngineFactory
from tests.realserver.conftest import API_KEY, API_KEY_ENV
from tests.realserver.helpers import endpoint, request, user

pytestmark = [pytest.mark.realserver, pytest.mark.ray, pytest.mark.timeout(600)]


def test_the_ray_worker_actor_drives_the_openai_engine(ray_cluster, vllm):
    ray = ray_cluster
    from agentrt.runtime.cluster.worker_actor import WorkerActor

    @ray.remote(num_cpus=0)
    class Inbox:
        """Stands in for the scheduler actor: keeps what the worker reports."""

        def __init__(self) -> None:
            self.events: list = []

        def report(self, worker_id, events, stats, sent_at=0.0) -> None:
            self.events += [(worker_id, wire.decode(e)) for e in events]

        def received(self) -> list:
            return self.events

    # The stand-in takes what the worker sends the real scheduler: a report it could
    # not take would fail inside the Inbox actor, unseen, and the test would only time out.
    from agentrt.runtime.cluster.scheduler_actor import SchedulerActor

    def params(actor_class):
        return list(inspect.signature(actor_class.__ray_metadata__.modified_class.report)
                    .parameters)
    assert params(Inbox) == params(SchedulerActor), "the stand-in's report is out of date"

    clock = RunClock(time.time())
    factory = OpenAIEngineFactory((endpoint(vllm.base_url, api_key_env=API_KEY_ENV),),
                                  origin=clock.origin)
    inbox = Inbox.remote()
    worker = WorkerActor.options(runtime_env={"env_vars": {API_KEY_ENV: API_KEY}}).remote(
        "w0", factory, clock, inbox)
    info = wire.decode(ray.get(worker.start.remote(), timeout=60))
    assert (info.worker_id, info.capabilities.clock, info.kv_capacity_blocks) == \
        ("w0", "realtime", 256)
    calls = [request("ray-1", user("From Ray."), max_tokens=8, ignore_eos=True),
             request("ray-2", user("Never mind."), max_tokens=1500, ignore_eos=True)]
    ray.get(worker.apply.remote(0, wire.encode(cmd.Batch([cmd.Send(calls)]))), timeout=30)
    ray.get(worker.apply.remote(1, wire.encode(cmd.Batch([cmd.Abort("ray-2")]))), timeout=30)

    async def wait_for_reply():
        deadline = time.monotonic() + 30
        while not ray.get(inbox.received.remote(), timeout=10):
            assert time.monotonic() < deadline, "no RequestDone from the worker in 30 s"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # an aborted call would have reported by now
        return ray.get(inbox.received.remote(), timeout=10)

    received = asyncio.run(wait_for_reply())
    ray.kill(worker)
    assert [(w, e.request_id, e.finish_reason) for w, e in received] == [("w0", "ray-1", "length")]
    done = received[0][1]
    assert done.output_tokens == 8 and done.error is None
    assert 0 <= done.dispatched_at <= done.finished_at < clock.now()
