"""The product catalog, loaded from data/catalog.json."""

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "catalog.json"


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    net_price: Decimal
    category: str


def load_catalog(path=DATA_FILE):
    """Products by SKU, read from a JSON file."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {
        item["sku"]: Product(item["sku"], item["name"], Decimal(item["net_price"]), item["category"])
        for item in raw["products"]
    }


def in_category(catalog, category):
    """The products of one category, by name."""
    return sorted((p for p in catalog.values() if p.category == category), key=lambda p: p.name)
