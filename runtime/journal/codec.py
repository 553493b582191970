"""How journaled values are stored: msgpack, with tuples kept as tuples.

A step's result feeds its successors' arguments, so a result read back from the journal
must be the value the step returned, not a look-alike: msgpack alone turns tuples into
lists, so tuples travel as an extension type. Values msgpack cannot carry (sets, class
instances, ...) are not journaled (`NotJournalable`); the step that returned one simply
runs again on resume, which is what happens without a journal.
"""
from __future__ import annotations

from typing import Any

import msgpack

_TUPLE = 1  # msgpack extension type code for a tuple


class NotJournalable(TypeError):
    """The value is not plain data (None, bool, int, float, str, bytes, list, tuple,
    dict) and cannot be journaled."""


def _default(value: Any) -> Any:
    if isinstance(value, tuple):
        return msgpack.ExtType(_TUPLE, pack(list(value)))
    # strict_types sends subclasses here too: an OrderedDict or a str enum is stored as
    # its plain base type, as msgpack would store it without strict_types.
    for base in (dict, list, str, bytes, float, int):
        if isinstance(value, base):
            return base(value)
    raise NotJournalable(f"a {type(value).__module__}.{type(value).__qualname__} is not "
                         "plain data and cannot be journaled")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _TUPLE:
        return tuple(unpack(data))
    return msgpack.ExtType(code, data)


def pack(value: Any) -> bytes:
    """`value` as bytes. Raises NotJournalable for anything that is not plain data."""
    try:
        # strict_types: tuples reach `_default` instead of being packed as arrays.
        return msgpack.packb(value, default=_default, use_bin_type=True, strict_types=True)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, NotJournalable):
            raise
        raise NotJournalable(str(exc)) from None


def unpack(data: bytes) -> Any:
    """The value `pack` stored."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
