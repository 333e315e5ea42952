"""Cost estimates for agent sessions, from a price table per model (settings).

``PORTAL_MODEL_PRICES`` maps a model name to its price in US dollars per million
tokens. The gateway records one token figure per execution (not input and output
apart), so the price is a blended one and the result an estimate, shown as such.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings


def price_per_million(model: str) -> Decimal | None:
    """The configured price of ``model`` (USD per million tokens), None when unknown."""
    prices = getattr(settings, "PORTAL_MODEL_PRICES", {}) or {}
    value = prices.get(model)
    if value is None:
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price if price >= 0 else None


def estimate_cost(model: str, tokens: int) -> Decimal | None:
    """Estimated cost in USD of ``tokens`` tokens of ``model``, to the cent (None: no price)."""
    price = price_per_million(model)
    if price is None:
        return None
    return (price * Decimal(tokens) / Decimal(1_000_000)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
