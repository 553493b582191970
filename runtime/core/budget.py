"""Budget accounting for one program: spend never exceeds the budget.

Before an LLM call is dispatched the ledger reserves its worst case (the prompt plus
`max_tokens` of output at the model's prices); when the call finishes it settles with
the actual usage and returns the unused part. When even one output token no longer
fits, `reserve` raises `BudgetExhausted` and the program stops with that status.

    limit ──────────────────────────────────────────────┐
    spent ████████░░░░░ reserved ▒▒▒▒ (in flight)  free  │
"""
from __future__ import annotations

from dataclasses import dataclass, field


class BudgetExhausted(RuntimeError):
    """The program's budget cannot pay for another call."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input_per_m: float = 0.0
    output_per_m: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1e6


@dataclass(slots=True)
class Reservation:
    model: str
    prompt_tokens: int
    max_tokens: int  # possibly lowered to what the budget allows
    tokens: int
    usd: float


@dataclass(slots=True)
class BudgetLedger:
    tokens_limit: int | None = None
    usd_limit: float | None = None
    prices: dict[str, Price] = field(default_factory=dict)
    spent_tokens: int = 0
    spent_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0

    def price(self, model: str) -> Price:
        return self.prices.get(model, Price())

    def reserve(self, model: str, prompt_tokens: int, max_tokens: int) -> Reservation:
        """Reserve the worst case of a call, lowering `max_tokens` to what is left.
        Raises BudgetExhausted when not even one output token fits."""
        allowed = max_tokens
        if self.tokens_limit is not None:
            free = self.tokens_limit - self.spent_tokens - self.reserved_tokens
            allowed = min(allowed, free - prompt_tokens)
        price = self.price(model)
        if self.usd_limit is not None and price.output_per_m > 0:
            free_usd = self.usd_limit - self.spent_usd - self.reserved_usd
            left = free_usd - price.cost(prompt_tokens, 0)
            allowed = min(allowed, int(left * 1e6 / price.output_per_m))
        elif self.usd_limit is not None and price.cost(prompt_tokens, 0) > (
                self.usd_limit - self.spent_usd - self.reserved_usd):
            allowed = 0
        if allowed < 1:
            raise BudgetExhausted(self._exhausted_message(model, prompt_tokens))
        tokens = prompt_tokens + allowed
        usd = price.cost(prompt_tokens, allowed)
        self.reserved_tokens += tokens
        self.reserved_usd += usd
        return Reservation(model, prompt_tokens, allowed, tokens, usd)

    def settle(self, reservation: Reservation, prompt_tokens: int, output_tokens: int) -> None:
        """Replace a reservation by the actual usage (which cannot exceed it)."""
        self.reserved_tokens -= reservation.tokens
        self.reserved_usd -= reservation.usd
        output_tokens = min(output_tokens, reservation.max_tokens)
        self.spent_tokens += prompt_tokens + output_tokens
        self.spent_usd += self.price(reservation.model).cost(prompt_tokens, output_tokens)

    def cancel(self, reservation: Reservation) -> None:
        """Return a reservation whose call never ran."""
        self.reserved_tokens -= reservation.tokens
        self.reserved_usd -= reservation.usd

    def _exhausted_message(self, model: str, prompt_tokens: int) -> str:
        parts = []
        if self.tokens_limit is not None:
            parts.append(f"tokens {self.spent_tokens}+{self.reserved_tokens} reserved of "
                         f"{self.tokens_limit}")
        if self.usd_limit is not None:
            parts.append(f"USD {self.spent_usd:.4f}+{self.reserved_usd:.4f} reserved of "
                         f"{self.usd_limit:.4f}")
        return (f"budget exhausted: a {prompt_tokens}-token prompt to {model} does not fit "
                f"({'; '.join(parts)}); raise the program's budget or shorten the prompt")
