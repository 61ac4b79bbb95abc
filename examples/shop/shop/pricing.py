"""Prices: tax, discounts and rounding to cents."""

from decimal import ROUND_HALF_UP, Decimal

TAX_RATE = Decimal("0.20")
CENT = Decimal("0.01")
BULK_QUANTITY = 10
BULK_FACTOR = Decimal("0.95")


def to_money(value):
    """Round a number to whole cents, halves away from zero."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def with_tax(net):
    """The gross price of a net price."""
    return to_money(Decimal(net) * (1 + TAX_RATE))


def apply_discount(price, percent):
    """The price after taking `percent` per cent off."""
    if not 0 <= percent <= 100:
        raise ValueError(f"discount must be between 0 and 100, got {percent}")
    return to_money(Decimal(price) * (100 - percent) / 100)


def bulk_price(unit_price, quantity):
    """Unit price times quantity, 5% off from BULK_QUANTITY units on."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    total = Decimal(unit_price) * quantity
    if quantity >= BULK_QUANTITY:
        total = total * BULK_FACTOR
    return to_money(total)
