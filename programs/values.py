"""Walking argument values: finding handles, substituting results, checking that
literals can be serialised.

Arguments are trees of containers (list, tuple, dict) whose leaves are literals or
``StepHandle``s. Walks go depth-first in argument order, so their results are
deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from agentrt.programs.errors import ArgumentSerializationError
from agentrt.programs.handle import StepHandle

_SCALARS = (type(None), bool, int, float, str, bytes)
_MSGPACK_INT_MIN, _MSGPACK_INT_MAX = -(2**63), 2**64 - 1


def iter_handles(value: Any) -> Iterator[StepHandle]:
    """Every handle inside ``value``, depth-first, repeats included."""
    if isinstance(value, StepHandle):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from iter_handles(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_handles(item)


def snapshot(value: Any) -> Any:
    """``value`` with every list, tuple and dict copied (recursively); leaves, handles
    included, are shared. A step's arguments are snapshotted when it is bound, so
    changing a container after passing it (appending a later step's result to a
    list, say) changes neither the graph nor what the step receives."""
    if isinstance(value, list):
        return [snapshot(item) for item in value]
    if isinstance(value, tuple):
        return tuple(snapshot(item) for item in value)
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    return value


def contains_handle(value: Any) -> bool:
    return next(iter_handles(value), None) is not None


def substitute(value: Any, results: Mapping[str, Any]) -> Any:
    """``value`` with every handle replaced by ``results[handle.node_id]``.

    Returns new containers of the same kinds (list, tuple, dict); leaves ``value``
    alone. Raises ``KeyError`` naming the node when a result is missing.
    """
    if isinstance(value, StepHandle):
        try:
            return results[value.node_id]
        except KeyError:
            raise KeyError(
                f"no result for step {value.node_id!r} yet; resolve a node's arguments "
                "only after all of its dependencies have finished"
            ) from None
    if isinstance(value, list):
        return [substitute(item, results) for item in value]
    if isinstance(value, tuple):
        return tuple(substitute(item, results) for item in value)
    if isinstance(value, dict):
        return {key: substitute(item, results) for key, item in value.items()}
    return value


def check_serializable(value: Any, step: str, where: str) -> None:
    """Raise ``ArgumentSerializationError`` unless ``value`` is msgpack-able data
    (None, bool, int, float, str, bytes, list, tuple, dict with str keys) or handles.

    ``step`` and ``where`` (the argument's name, e.g. ``"config['paths'][0]"``) go into
    the message.
    """
    if isinstance(value, StepHandle):
        return
    if isinstance(value, _SCALARS):
        if isinstance(value, int) and not _MSGPACK_INT_MIN <= value <= _MSGPACK_INT_MAX:
            _reject(step, where, "an int outside the 64-bit range")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_serializable(item, step, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                _reject(step, where, f"a dict with a {_type_name(key)} key ({key!r})")
            check_serializable(item, step, f"{where}[{key!r}]")
        return
    _reject(step, where, f"a {_type_name(value)}")


def _type_name(value: Any) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _reject(step: str, where: str, what: str) -> None:
    raise ArgumentSerializationError(
        f"step {step!r}: argument `{where}` is {what}, which cannot be serialised; pass "
        "plain data (None, bool, int, float, str, bytes, lists, tuples, dicts with str "
        "keys) or the result of another step, and build other objects inside the step"
    )
