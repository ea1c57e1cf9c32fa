"""Money at the edges: decimal strings ("12.34") in JSON, integer minor units plus an ISO
currency everywhere else. Parsing is strict, and each way a string can be wrong has its own
stable error code, so clients can tell them apart."""

from __future__ import annotations

import re

from core.errors import DomainError

CURRENCY_MINOR_DIGITS = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "JPY": 0,
    "KWD": 3,
}
MAX_AMOUNT_CHARS = 24
MAX_MINOR_UNITS = 10**15  # far below bigint, so sums of many amounts cannot overflow

_DECIMAL = re.compile(r"(?P<sign>[+-]?)(?P<units>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


class CurrencyUnsupported(DomainError):
    code = "currency_unsupported"
    title = "Unsupported currency"


class AmountMalformed(DomainError):
    code = "amount_malformed"
    title = "Amount is not a plain decimal string"


class AmountTooLong(DomainError):
    code = "amount_too_long"
    title = "Amount string is too long"


class AmountNotPositive(DomainError):
    code = "amount_not_positive"
    title = "Amount must be greater than zero"


class AmountTooPrecise(DomainError):
    code = "amount_too_precise"
    title = "Amount has more decimal places than the currency allows"


class AmountTooLarge(DomainError):
    code = "amount_too_large"
    title = "Amount is too large"


def currency_minor_digits(currency: object) -> int:
    if not isinstance(currency, str) or currency not in CURRENCY_MINOR_DIGITS:
        raise CurrencyUnsupported(
            f"currency must be one of {', '.join(sorted(CURRENCY_MINOR_DIGITS))}",
            allowed=sorted(CURRENCY_MINOR_DIGITS),
        )
    return CURRENCY_MINOR_DIGITS[currency]


def amount_parse(value: object, *, currency: str) -> int:
    """A positive decimal string -> integer minor units of ``currency``.

    Refuses non-strings (JSON numbers lose precision), NaN/Infinity, exponent forms, signs other
    than none, whitespace, zero, more fraction digits than the currency has, and huge values."""
    digits = currency_minor_digits(currency)
    if not isinstance(value, str):
        raise AmountMalformed('amount must be a JSON string such as "12.34"')
    if len(value) > MAX_AMOUNT_CHARS:
        raise AmountTooLong(f"amount must be at most {MAX_AMOUNT_CHARS} characters")
    match = _DECIMAL.fullmatch(value)
    if match is None:
        raise AmountMalformed('amount must be a plain decimal string such as "12.34"')
    if match["sign"] == "-":
        raise AmountNotPositive("amount must be greater than zero")
    if match["sign"] == "+":
        raise AmountMalformed("amount must not carry a sign")
    fraction = match["fraction"] or ""
    if len(fraction) > digits:
        raise AmountTooPrecise(
            f"{currency} allows at most {digits} decimal places", max_decimal_places=digits
        )
    minor = int(match["units"]) * 10**digits + (int(fraction.ljust(digits, "0")) if digits else 0)
    if minor <= 0:
        raise AmountNotPositive("amount must be greater than zero")
    if minor >= MAX_MINOR_UNITS:
        raise AmountTooLarge(
            f"amount must be below {amount_format(MAX_MINOR_UNITS, currency=currency)}"
        )
    return minor


def amount_format(minor: int, *, currency: str) -> str:
    """Integer minor units -> the decimal string with exactly the currency's minor digits."""
    digits = currency_minor_digits(currency)
    sign = "-" if minor < 0 else ""
    units, fraction = divmod(abs(minor), 10**digits)
    if digits == 0:
        return f"{sign}{units}"
    return f"{sign}{units}.{fraction:0{digits}d}"
