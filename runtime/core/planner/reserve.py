"""Reserving parallel samples in a program's budget ledger: the worst case of each
call before it is dispatched, so that spend never exceeds the budget."""
from __future__ import annotations

from collections.abc import Sequence

from agentrt.runtime.core.budget import BudgetExhausted, BudgetLedger, Reservation

RESERVE_MARGIN_USD = 1e-9
"""Headroom a reservation leaves, so float rounding in the ledger's sums cannot tip
spend over the budget."""


def reserve_samples(ledger: BudgetLedger, model: str, prompt_tokens: int, max_tokens: int,
                    k: int, ks: Sequence[int], worst_usd: float) -> list[Reservation]:
    """Reserve up to `k` calls of `model` at their full worst case (prompt + max_tokens,
    never shortened; `worst_usd` each), leaving RESERVE_MARGIN_USD of the USD budget;
    keep the largest count that is one of the options' `ks` and cancel the rest."""
    held: list[Reservation] = []
    for _ in range(k):
        if ledger.usd_limit is not None and (
                ledger.usd_limit - ledger.spent_usd - ledger.reserved_usd - worst_usd
                < RESERVE_MARGIN_USD):
            break
        try:
            r = ledger.reserve(model, prompt_tokens, max_tokens)
        except BudgetExhausted:
            break
        if r.max_tokens < max_tokens:  # a token budget would cut the sample short
            ledger.cancel(r)
            break
        held.append(r)
    keep = max((int(x) for x in ks if x <= len(held)), default=0)
    for r in held[keep:]:
        ledger.cancel(r)
    return held[:keep]
