"""A thief worker's calls held until a stolen session's KV lands.

With kv_move="transfer" the scheduler tells the thief to hold the session's calls
(`Expect`) and tells the source to send the KV (`HandOver`); the source then calls the
thief (`receive_kv`). The Expect comes in the thief's command batch and the KV in a
call from its peer, two channels with no order between them, so either may come
first. Both name the move they belong to (a number the scheduler gives each move):

- KV that lands before its Expect is remembered, and that Expect then holds nothing
  (held, the calls would wait for a copy that already came until the timeout);
- an Expect's timeout releases only its own hold, never a later move's of the same
  session (which would run that move's calls before their KV lands);
- KV that lands after its Expect timed out releases nothing.

Plain bookkeeping, no clock or Ray: the worker actor arms the timeouts.
"""
from __future__ import annotations

from agentrt.runtime.core.messages import LLMRequest


class KVHolds:
    def __init__(self) -> None:
        self._held: dict[str, tuple[int, list[LLMRequest]]] = {}  # session -> (move, calls)
        self._landed: set[int] = set()  # moves whose KV came before their Expect
        self._expired: set[int] = set()  # moves whose Expect timed out before the KV

    def expect(self, session_id: str, move: int) -> bool:
        """The session's KV is on its way (move `move`): hold its calls from now on.
        False when that KV already landed (nothing is held; arm no timeout)."""
        if move in self._landed:
            self._landed.discard(move)
            return False
        calls: list[LLMRequest] = []
        previous = self._held.get(session_id)
        if previous is not None:  # an earlier move's KV never came: this one's will
            self._expired.add(previous[0])
            calls = previous[1]
        self._held[session_id] = (move, calls)
        return True

    def hold(self, request: LLMRequest) -> bool:
        """Keep the call if its session's KV is awaited; False to submit it now."""
        held = self._held.get(request.session_id)
        if held is None:
            return False
        held[1].append(request)
        return True

    def landed(self, session_id: str, move: int) -> list[LLMRequest]:
        """Move `move`'s KV is in: the calls it held, to submit now."""
        held = self._held.get(session_id)
        if held is not None and held[0] == move:
            del self._held[session_id]
            return held[1]
        if move in self._expired:
            self._expired.discard(move)
        else:
            self._landed.add(move)
        return []

    def timed_out(self, session_id: str, move: int) -> list[LLMRequest]:
        """Move `move`'s Expect waited too long: the calls it still holds (none if its
        KV landed, or a later move holds the session now)."""
        held = self._held.get(session_id)
        if held is None or held[0] != move:
            return []
        del self._held[session_id]
        self._expired.add(move)
        return held[1]

    def abort(self, request_id: str) -> None:
        """Forget a held call."""
        for _, calls in self._held.values():
            calls[:] = [r for r in calls if r.request_id != request_id]

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._held
