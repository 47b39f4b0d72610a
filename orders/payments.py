"""The simulated card gateway: card checks and a documented decline rule.

No real money moves. The rule mirrors well-known test cards, so that a client can
exercise both outcomes:

- a card number ending in ``0002`` is declined (``card_declined``);
- a card number ending in ``9995`` is declined for lack of funds (``insufficient_funds``);
- every other valid card is approved.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date

DECLINE_RULES: dict[str, tuple[str, str]] = {
    "0002": ("card_declined", "The card was declined."),
    "9995": ("insufficient_funds", "The card was declined: insufficient funds."),
}
_EXPIRY = re.compile(r"^(0[1-9]|1[0-2])\s*/\s*(\d{2})$")


@dataclass(frozen=True)
class Card:
    number: str  # digits only
    exp_month: int
    exp_year: int  # four digits
    cvc: str

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def brand(self) -> str:
        return card_brand(self.number)


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str = ""
    decline_code: str = ""
    message: str = ""


def normalize_card_number(raw: str) -> str:
    return re.sub(r"[\s-]", "", raw or "")


def luhn_valid(number: str) -> bool:
    if not number.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "card"


def parse_expiry(raw: str) -> tuple[int, int] | None:
    """``MM/YY`` as (month, four-digit year), or None when malformed."""
    match = _EXPIRY.match((raw or "").strip())
    if match is None:
        return None
    return int(match.group(1)), 2000 + int(match.group(2))


def is_expired(exp_month: int, exp_year: int, *, today: date) -> bool:
    # A card is valid through the last day of its expiry month.
    return (exp_year, exp_month) < (today.year, today.month)


def charge(card: Card) -> ChargeResult:
    """Simulate the authorisation of a card payment."""
    rule = DECLINE_RULES.get(card.last4)
    if rule is not None:
        code, message = rule
        return ChargeResult(approved=False, decline_code=code, message=message)
    return ChargeResult(approved=True, reference=f"sim_{secrets.token_hex(12)}")
