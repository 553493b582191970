"""A workload file's entry point: which program to run, on what inputs.

A file given to `agentrt run FILE` defines one `Workload` at module level:

    workload = Workload(program=coding_agent, inputs=lambda i: {"task": TASKS[i % 3]},
                        responder=ScriptedResponder(decide))

`responder` is what the simulated engines answer with (filler text by default); a real
engine ignores it, so the same file runs unchanged against a real model.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import ray.cloudpickle

from agentrt.programs import ProgramDef
from agentrt.runtime.engines.simulated.responder import Responder


@dataclass
class Workload:
    program: ProgramDef
    inputs: Callable[[int], dict[str, Any]]
    responder: Responder | None = None
    programs: int = 8
    """How many programs `agentrt run` starts when --programs is not given."""
    config: dict[str, Any] = field(default_factory=dict)
    """RuntimeConfig defaults for this workload (the command line overrides them)."""

    def make_inputs(self, n: int) -> list[dict[str, Any]]:
        return [self.inputs(i) for i in range(n)]


def load_workload(path: str | Path) -> Workload:
    """Import a workload file and return its single `Workload`. Its code is shipped to
    Ray workers by value, so the file need not be importable there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"workload file {str(path)!r} does not exist")
    name = f"agentrt_workload_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    ray.cloudpickle.register_pickle_by_value(module)
    found = [v for v in vars(module).values() if isinstance(v, Workload)]
    if len(found) != 1:
        raise ValueError(
            f"{path} defines {len(found)} Workload objects; define exactly one at module "
            f"level, e.g. `workload = Workload(program=my_program, inputs=lambda i: {{...}})`")
    return found[0]
