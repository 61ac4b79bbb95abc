from decimal import Decimal

import pytest

from shop.cart import Cart
from shop.inventory import OutOfStock


@pytest.fixture
def cart(catalog, inventory):
    return Cart(catalog, inventory)


def test_new_cart_is_empty(cart):
    assert cart.item_count() == 0


def test_unknown_sku_is_rejected(cart):
    with pytest.raises(KeyError):
        cart.add("NOPE-1")


def test_cannot_add_more_than_stock(cart):
    with pytest.raises(OutOfStock):
        cart.add("TEA-002", 11)


def test_total_includes_tax(cart):
    cart.add("CUP-001", 2)
    assert cart.total() == Decimal("19.20")


def test_total_with_bulk_and_promotion(cart):
    cart.add("TEA-001", 10)
    assert cart.total("ten_percent") == Decimal("46.18")


def test_checkout_takes_stock(cart, inventory):
    cart.add("POT-001", 3)
    cart.checkout()
    assert inventory.count("POT-001") == 7
    assert cart.item_count() == 0
