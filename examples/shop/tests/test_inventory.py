import pytest

from shop.config import LOW_STOCK_LIMIT
from shop.inventory import Inventory, OutOfStock


def test_add_and_count():
    stock = Inventory()
    stock.add("X", 3)
    stock.add("X", 2)
    assert stock.count("X") == 5


def test_add_rejects_non_positive():
    with pytest.raises(ValueError):
        Inventory().add("X", 0)


def test_remove_takes_units(inventory):
    inventory.remove("TEA-001", 4)
    assert inventory.count("TEA-001") == 6


def test_remove_more_than_stock_fails(inventory):
    with pytest.raises(OutOfStock):
        inventory.remove("TEA-001", 11)


def test_low_stock_limit_comes_from_config():
    assert Inventory.low_stock_limit == LOW_STOCK_LIMIT


def test_low_stock_lists_skus_below_limit(inventory):
    inventory.remove("CUP-001", 8)
    assert inventory.low_stock() == ["CUP-001"]
