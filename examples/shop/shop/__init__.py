"""A small shop: prices, stock, a JSON catalog, promotions and a cart."""
