"""The core's decisions as a log: what tests compare across drivers and runs.

With recording on, the scheduler and the cluster control append one record per
decision, in the order they were made:

    Dispatch    a queued call was sent to a worker
    Steal       an idle worker took a call queued for another
    Moved       a session left a worker (stolen): its KV recomputed or copied over a link
    Preempted   the queue policy recalled a call from a worker
    Retained    a TTL decision for a session paused on a tool
    Admitted    ThunderAgent admission let a program run on a worker, or paused it

Times are left out on purpose: the two drivers' clocks differ by real-clock jitter,
their decisions must not.
"""
from __future__ import annotations

from typing import NamedTuple, Union


class Dispatch(NamedTuple):
    """`request_id` was sent to `worker_id`."""

    worker_id: str
    request_id: str


class Steal(NamedTuple):
    """`thief` took `request_id`, queued for `victim`."""

    thief: str
    victim: str
    request_id: str


class Moved(NamedTuple):
    """`session_id` left `src` for `dst`; `kv` is "recompute" or the link it crossed."""

    session_id: str
    src: str
    dst: str
    kv: str


class Preempted(NamedTuple):
    """`request_id` was recalled from `worker_id` under the queue policy's `reason`."""

    worker_id: str
    request_id: str
    reason: str


class Retained(NamedTuple):
    """The TTL policy's `action` for `session_id` on `worker_id` while it runs `tool`."""

    worker_id: str
    session_id: str
    tool: str
    action: str
    reason: str


class Admitted(NamedTuple):
    """Admission `action` ("admit" on `worker_id`, "pause", "pause_after_turn") for
    `program_id`."""

    program_id: str
    action: str
    worker_id: str


Decision = Union[Dispatch, Steal, Moved, Preempted, Retained, Admitted]
