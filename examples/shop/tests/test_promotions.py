from decimal import Decimal

import pytest

from shop.promotions import apply_promotion, registry


def test_registry_lists_promotions():
    assert registry() == ["five_off", "none", "ten_percent"]


@pytest.mark.parametrize("name", registry())
def test_promotion_never_raises_price(name):
    assert apply_promotion(name, "20.00") <= Decimal("20.00")


def test_five_off_never_goes_negative():
    assert apply_promotion("five_off", "3.00") == Decimal("0.00")
