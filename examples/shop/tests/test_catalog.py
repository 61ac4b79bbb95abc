from decimal import Decimal

from shop.catalog import Product, in_category, load_catalog


def test_catalog_has_all_products(catalog):
    assert set(catalog) == {"TEA-001", "TEA-002", "CUP-001", "POT-001"}


def test_prices_are_decimals(catalog):
    assert catalog["POT-001"].net_price == Decimal("24.95")


def test_in_category_sorted_by_name(catalog):
    assert [p.name for p in in_category(catalog, "tea")] == ["Black tea", "Green tea"]


def test_load_catalog_from_other_file(tmp_path):
    data = tmp_path / "one.json"
    data.write_text('{"products": [{"sku": "A", "name": "a", "net_price": "1", "category": "c"}]}')
    assert load_catalog(data) == {"A": Product("A", "a", Decimal("1"), "c")}
