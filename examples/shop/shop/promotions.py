"""Promotions, registered by name with the @promotion decorator."""

from decimal import Decimal

from shop.pricing import apply_discount, to_money

PROMOTIONS = {}


def promotion(name):
    """Register the decorated function as the promotion called `name`."""

    def register(func):
        PROMOTIONS[name] = func
        return func

    return register


def registry():
    """The names of all registered promotions."""
    return sorted(PROMOTIONS)


def apply_promotion(name, total):
    return PROMOTIONS[name](Decimal(total))


@promotion("none")
def no_promotion(total):
    return to_money(total)


@promotion("ten_percent")
def ten_percent(total):
    return apply_discount(total, 10)


@promotion("five_off")
def five_off(total):
    return to_money(max(total - 5, Decimal(0)))
