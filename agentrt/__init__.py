"""agentrt: a program-level runtime for LLM agents.

    import agentrt

    @agentrt.tool
    def run_tests(workspace: str) -> dict: ...

    @agentrt.step(tools=[run_tests])
    async def fix(ctx, task: str) -> str: ...

    @agentrt.program(deadline_s=600)
    def agent(task: str):
        return fix(task)

    report = agentrt.run(agent, [{"task": "..."}], workers=4)

    gw = agentrt.serve(workers=4)        # an OpenAI-compatible gateway (docs/gateway.md)

This package only gathers the public names of `programs` (authoring) and `runtime`
(running); the driver, and with it Ray, is imported on first use.
"""
from agentrt.programs import Candidate, ChatReply, StepContext, program, step, tool

__all__ = ["tool", "step", "program", "Candidate", "ChatReply", "StepContext", "Runtime",
           "RuntimeConfig", "Workload", "run", "serve",
           "LLMCallError", "ProgramEnded", "SchedulerLost"]


def __getattr__(name: str):
    if name in ("Runtime", "run"):
        from agentrt.runtime.cluster import driver
        return getattr(driver, name)
    if name == "serve":
        from agentrt.runtime.serve import launcher
        return launcher.serve
    if name == "RuntimeConfig":
        from agentrt.runtime.config import RuntimeConfig
        return RuntimeConfig
    if name in ("LLMCallError", "ProgramEnded", "SchedulerLost"):  # what a step may catch
        from agentrt.runtime.runner import errors
        return getattr(errors, name)
    if name == "Workload":
        from agentrt.runtime.workload import Workload
        return Workload
    raise AttributeError(f"module 'agentrt' has no attribute {name!r}")
