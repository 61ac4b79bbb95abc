from decimal import Decimal

import pytest

from shop.pricing import TAX_RATE, apply_discount, bulk_price, to_money, with_tax


def test_to_money_rounds_half_up():
    assert to_money("2.345") == Decimal("2.35")


def test_with_tax_adds_tax_rate():
    assert with_tax("10.00") == Decimal("10.00") * (1 + TAX_RATE)


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(0, "80.00"), (10, "72.00"), (25, "60.00"), (100, "0.00")],
)
def test_apply_discount(percent, expected):
    assert apply_discount("80.00", percent) == Decimal(expected)


def test_apply_discount_rejects_out_of_range():
    with pytest.raises(ValueError):
        apply_discount("10.00", 120)


def test_bulk_price_below_threshold():
    assert bulk_price("2.00", 9) == Decimal("18.00")


def test_bulk_price_at_threshold_gets_discount():
    assert bulk_price("2.00", 10) == Decimal("19.00")
