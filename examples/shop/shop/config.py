"""Shop-wide settings."""

CURRENCY = "EUR"
LOW_STOCK_LIMIT = 5
