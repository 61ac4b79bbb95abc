"""Stock levels per SKU."""

from shop.config import LOW_STOCK_LIMIT


class OutOfStock(Exception):
    """Raised when more units are taken than are in stock."""


class Inventory:
    """Units in stock, by SKU."""

    low_stock_limit = LOW_STOCK_LIMIT

    def __init__(self):
        self._stock = {}

    def add(self, sku, quantity):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self._stock[sku] = self._stock.get(sku, 0) + quantity

    def remove(self, sku, quantity):
        available = self._stock.get(sku, 0)
        if quantity > available:
            raise OutOfStock(f"{sku}: {quantity} wanted, {available} in stock")
        self._stock[sku] = available - quantity

    def count(self, sku):
        return self._stock.get(sku, 0)

    def low_stock(self):
        """SKUs whose stock is below the class's `low_stock_limit`."""
        return sorted(sku for sku, n in self._stock.items() if n < self.low_stock_limit)
