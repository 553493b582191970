"""The simulated GPU worker: continuous batching over real KV accounting, with time
charged by a performance model calibrated to published figures.

    hardware     GPU and model specs (the one table of published figures)
    perf_model   PerfModel: calibrated analytic step time, KV capacity, KV move costs
    engine       SimulatedEngine: the stepped Engine
    batching     BatchScheduler: vLLM-v1-style admission, chunked prefill, preemption
    responder    what a simulated model replies (filler, scripted tool calls)
"""
