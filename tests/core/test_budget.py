import random

import pytest

from agentrt.runtime.core.budget import BudgetExhausted, BudgetLedger, Price


def test_reserve_lowers_max_tokens_to_what_is_left():
    ledger = BudgetLedger(tokens_limit=1000)
    r = ledger.reserve("m", prompt_tokens=900, max_tokens=512)
    assert r.max_tokens == 100
    ledger.settle(r, 900, 40)
    assert ledger.spent_tokens == 940 and ledger.reserved_tokens == 0


def test_exhausted_budget_names_the_numbers_and_the_fix():
    ledger = BudgetLedger(tokens_limit=100)
    with pytest.raises(BudgetExhausted, match="100.*raise the program's budget"):
        ledger.reserve("m", prompt_tokens=100, max_tokens=10)


def test_usd_budget_uses_model_prices():
    ledger = BudgetLedger(usd_limit=0.001, prices={"m": Price(1.0, 2.0)})
    r = ledger.reserve("m", prompt_tokens=600, max_tokens=1000)
    assert r.max_tokens == 200  # (0.001 - 600e-6) / 2e-6
    ledger.settle(r, 600, 200)
    assert ledger.spent_usd == pytest.approx(0.001)
    with pytest.raises(BudgetExhausted):
        ledger.reserve("m", prompt_tokens=1, max_tokens=1)


def test_spend_never_exceeds_the_budget_over_random_calls():
    rng = random.Random(7)
    for _ in range(200):
        ledger = BudgetLedger(tokens_limit=rng.randint(100, 5000),
                              usd_limit=rng.uniform(1e-4, 1e-2),
                              prices={"m": Price(0.5, 1.5)})
        open_reservations = []
        for _ in range(50):
            try:
                open_reservations.append(
                    ledger.reserve("m", rng.randint(1, 400), rng.randint(1, 400)))
            except BudgetExhausted:
                pass
            if open_reservations and rng.random() < 0.6:
                r = open_reservations.pop(rng.randrange(len(open_reservations)))
                ledger.settle(r, r.prompt_tokens, rng.randint(0, r.max_tokens))
            assert ledger.spent_tokens + ledger.reserved_tokens <= ledger.tokens_limit
            assert ledger.spent_usd + ledger.reserved_usd <= ledger.usd_limit + 1e-12
