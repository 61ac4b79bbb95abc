"""A shopping cart over a catalog and an inventory."""

from shop.inventory import OutOfStock
from shop.pricing import bulk_price, with_tax
from shop.promotions import apply_promotion


class Cart:
    def __init__(self, catalog, inventory):
        self.catalog = catalog
        self.inventory = inventory
        self.lines = {}

    def add(self, sku, quantity=1):
        if sku not in self.catalog:
            raise KeyError(sku)
        wanted = self.lines.get(sku, 0) + quantity
        if wanted > self.inventory.count(sku):
            raise OutOfStock(sku)
        self.lines[sku] = wanted

    def item_count(self):
        return sum(self.lines.values())

    def net_total(self):
        return sum(
            (bulk_price(self.catalog[sku].net_price, n) for sku, n in self.lines.items()),
            start=bulk_price(0, 0),
        )

    def total(self, promotion="none"):
        """The gross total after a promotion."""
        return with_tax(apply_promotion(promotion, self.net_total()))

    def checkout(self):
        """Take the cart's items out of stock and empty the cart."""
        for sku, n in self.lines.items():
            self.inventory.remove(sku, n)
        self.lines = {}
