"""Configuration errors as sentences: which option, which value, what is valid.

pydantic reports "1 validation error for RuntimeConfig / queue / Value error, ...
For further information visit ..."; users of the command line and of the Python API
get one line per bad option instead, naming it as they wrote it.
"""
from __future__ import annotations

from typing import Any, Mapping

from pydantic import ValidationError

# Options whose command-line flag is not the field name with dashes.
FLAGS: Mapping[str, str] = {"max_concurrent_programs": "--concurrency"}


class ConfigError(ValueError):
    """An invalid configuration, explained (see `explain`)."""


def explain(exc: ValidationError, flags: bool = False) -> str:
    """One sentence per error: the option (`--flag` form with `flags`), the bad value
    and the reason, with the valid values when the validator listed them."""
    return "; ".join(_sentence(err, flags) for err in exc.errors())


def _sentence(err: Mapping[str, Any], flags: bool) -> str:
    loc = [str(part) for part in err.get("loc", ())]
    if not loc:  # a check across options: its message names them
        return str(err.get("ctx", {}).get("error", err.get("msg", "")))
    field = loc[0]
    name = FLAGS.get(field, "--" + field.replace("_", "-")) if flags else field
    if len(loc) > 1:
        name += "." + ".".join(loc[1:])
    msg = str(err.get("msg", ""))
    if err.get("type") == "value_error":
        msg = str(err.get("ctx", {}).get("error", msg))
    elif err.get("type") == "extra_forbidden":
        msg = "is not an option" if len(loc) > 1 else "is not an option of the run"
        return f"{name} {msg}"
    else:
        msg = msg[0].lower() + msg[1:] if msg else msg
    return f"{name}={_show(err.get('input'))}: {msg}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
