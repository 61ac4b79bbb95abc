import pytest

from shop.catalog import load_catalog
from shop.inventory import Inventory


@pytest.fixture(scope="session")
def catalog():
    """The catalog, loaded once for the whole session."""
    return load_catalog()


@pytest.fixture
def inventory(catalog):
    """A fresh inventory with ten units of every product."""
    stock = Inventory()
    for sku in catalog:
        stock.add(sku, 10)
    return stock
