"""Amounts: strict decimal strings in, integer minor units out, a stable code per mistake."""

import pytest

from core.money import amount_format, amount_parse


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.34", "EUR", 1234),
        ("0.01", "EUR", 1),
        ("7", "EUR", 700),
        ("1.50", "EUR", 150),
        ("42", "JPY", 42),
        ("1.234", "KWD", 1234),
    ],
)
def test_a_positive_decimal_string_becomes_minor_units(text, currency, minor):
    assert amount_parse(text, currency=currency) == minor


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("0", "amount_not_positive"),
        ("0.00", "amount_not_positive"),
        ("-1.00", "amount_not_positive"),
        ("NaN", "amount_malformed"),
        ("Infinity", "amount_malformed"),
        ("1e3", "amount_malformed"),
        ("1E-2", "amount_malformed"),
        ("+5", "amount_malformed"),
        (" 5", "amount_malformed"),
        ("5.", "amount_malformed"),
        (".5", "amount_malformed"),
        ("1,00", "amount_malformed"),
        ("0x10", "amount_malformed"),
        ("", "amount_malformed"),
        (12.5, "amount_malformed"),
        (True, "amount_malformed"),
        (None, "amount_malformed"),
        ("1.001", "amount_too_precise"),
        ("1.500", "amount_too_precise"),
        ("1" * 25, "amount_too_long"),
        ("10000000000000.00", "amount_too_large"),
        ("١٢", "amount_malformed"),
    ],
)
def test_a_bad_amount_is_refused_with_its_code(value, code):
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the code is what is checked
        amount_parse(value, currency="EUR")

    assert raised.value.code == code


def test_an_unknown_currency_is_refused():
    with pytest.raises(Exception) as raised:  # noqa: PT011
        amount_parse("1.00", currency="XXX")

    assert raised.value.code == "currency_unsupported"


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1234, "EUR", "12.34"),
        (5, "EUR", "0.05"),
        (-5, "EUR", "-0.05"),
        (42, "JPY", "42"),
        (1, "KWD", "0.001"),
    ],
)
def test_minor_units_format_with_the_currencys_digits(minor, currency, text):
    assert amount_format(minor, currency=currency) == text


def test_formatting_then_parsing_gives_the_same_amount_back():
    for minor in (1, 99, 100, 123456789):
        assert amount_parse(amount_format(minor, currency="EUR"), currency="EUR") == minor
