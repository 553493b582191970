"""Which program and session a call belongs to, without changing the client's code.

Clients already send fields that name a conversation; a client configured with default
headers (the OpenAI SDKs' `default_headers`, LiteLLM's `extra_headers`) can name it
exactly. First found wins:

    program   X-Agentrt-Program header, metadata.agentrt_program, metadata.program_id,
              user, then the session's id
    session   X-Session-Id header, metadata.agentrt_session, metadata.session_id,
              prompt_cache_key, then the program's id

A call that names neither is a program of its own, ended after its reply. A program
ends by `X-Agentrt-Program-End: true` on its last call, by `POST
/v1/programs/{id}/end`, or after the gateway's idle timeout; a session ends with its
program, or by `X-Agentrt-Session-End: true` on its last call. Budgets and deadlines
come from headers on the program's first call, within the API key's.

The time between a session's reply and its next call is the tool's time: the tool named
in the conversation's last tool call (`last_tool`), when the conversation ends with
its results.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from agentrt.runtime.serve.config import ApiKey
from agentrt.runtime.serve.errors import bad_request, show
from agentrt.runtime.serve.schema import ChatRequest

PROGRAM = "x-agentrt-program"
SESSION = "x-session-id"
PROGRAM_END = "x-agentrt-program-end"
SESSION_END = "x-agentrt-session-end"
BUDGET_USD = "x-agentrt-budget-usd"
BUDGET_TOKENS = "x-agentrt-budget-tokens"
DEADLINE_S = "x-agentrt-deadline-s"
MAX_ID_CHARS = 256
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}


@dataclass(frozen=True, slots=True)
class Identity:
    """A call's program and session as the client named them (`program` None: the
    call named neither and is a program of its own), where each name came from, and
    whether the call is its program's or session's last."""

    program: str | None
    session: str | None
    program_source: str
    session_source: str
    end_program: bool = False
    end_session: bool = False

    @property
    def anonymous(self) -> bool:
        return self.program is None


@dataclass(frozen=True, slots=True)
class ProgramLimits:
    budget_usd: float | None = None
    budget_tokens: int | None = None
    deadline_s: float | None = None


def identify(headers: Mapping[str, str], request: ChatRequest) -> Identity:
    """The call's identity (`headers`: lower-case names). Raises a 400 GatewayError
    naming a bad id or flag."""
    meta = request.metadata or {}
    program = _first([(headers.get(PROGRAM), "header " + PROGRAM),
                      (meta.get("agentrt_program"), "metadata.agentrt_program"),
                      (meta.get("program_id"), "metadata.program_id"),
                      (request.user, "user")])
    session = _first([(headers.get(SESSION), "header " + SESSION),
                      (meta.get("agentrt_session"), "metadata.agentrt_session"),
                      (meta.get("session_id"), "metadata.session_id"),
                      (request.prompt_cache_key, "prompt_cache_key")])
    end_program = flag(headers, PROGRAM_END)
    end_session = flag(headers, SESSION_END)
    if program is None and session is None:
        return Identity(None, None, "none", "none", True, True)
    if program is None:
        program = (session[0], "session")
    if session is None:
        session = (program[0], "program")
    return Identity(program[0], session[0], program[1], session[1], end_program,
                    end_session or end_program)


def _first(candidates: Sequence[tuple[Any, str]]) -> tuple[str, str] | None:
    for value, source in candidates:
        if value is None or value == "":
            continue
        text = str(value)
        if len(text) > MAX_ID_CHARS or not text.isprintable():
            raise bad_request(f"{source}={show(text)} is not a usable id: use at most "
                              f"{MAX_ID_CHARS} printable characters", param=source)
        return text, source
    return None


def flag(headers: Mapping[str, str], name: str) -> bool:
    value = headers.get(name)
    if value is None:
        return False
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise bad_request(f"header {name}={show(value)} must be true or false", param=name)


def limits(headers: Mapping[str, str], key: ApiKey | None) -> ProgramLimits:
    """A program's budget and deadline: the headers', within the key's (the lower of
    each). Raises a 400 GatewayError naming a bad header."""
    usd = _number(headers, BUDGET_USD, float)
    tokens = _number(headers, BUDGET_TOKENS, int)
    deadline = _number(headers, DEADLINE_S, float)
    if key is not None:
        usd, tokens, deadline = (_lower(usd, key.budget_usd), _lower(tokens, key.budget_tokens),
                                 _lower(deadline, key.deadline_s))
    return ProgramLimits(usd, tokens, deadline)


def _number(headers: Mapping[str, str], name: str, kind: type) -> Any:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = kind(value.strip())
    except ValueError:
        number = None
    if number is None or not number > 0 or number != number or number == float("inf"):
        unit = "an integer" if kind is int else "a number"
        raise bad_request(f"header {name}={show(value)} must be {unit} > 0", param=name)
    return number


def _lower(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def last_tool(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The tool named in the conversation's last tool call, when the conversation ends
    with that call's results (the call resumes after the tool); else None (a user turn
    after the results means the gap was the user's too)."""
    results = False
    for message in reversed(messages):
        role = message.get("role")
        if role == "tool":
            results = True
            continue
        if role != "assistant" or not results:
            return None
        calls = message.get("tool_calls") or ()
        function = (calls[-1].get("function") or {}) if calls else {}
        name = function.get("name")
        return str(name) if name else None
    return None
