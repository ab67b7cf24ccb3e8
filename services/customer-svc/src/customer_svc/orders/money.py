"""Amounts and currencies (pure): ISO 4217 codes and their minor units.

An amount is exact (``Decimal``), never negative (a refund is a status, not a negative order), and
has at most as many decimal places as the currency's minor unit: 12.345 CNY is a typo, not a
price. It is shown with exactly that many places ("12.50", "1200" for JPY, "1.250" for KWD) so
that two systems comparing strings agree.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

#: active ISO 4217 codes with 2 minor digits (the common case)
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF "
    "CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF "
    "IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR "
    "MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR "
    "ZMW ZWG"
).split()
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split()
_THREE = "BHD IQD JOD KWD LYD OMR TND".split()
MINOR_UNITS: dict[str, int] = {**{c: 2 for c in _TWO}, **{c: 0 for c in _ZERO}, **{c: 3 for c in _THREE}}
#: the largest amount taken (fits numeric(18, 3) with room; no order is worth 10^15)
MAX_AMOUNT = Decimal(10) ** 15


class InvalidMoney(ValueError):
    pass


def currency_code(text: str) -> str:
    """The ISO 4217 code, upper-cased; ``InvalidMoney`` for anything else."""
    code = text.strip().upper()
    if code not in MINOR_UNITS:
        raise InvalidMoney(f"{text!r} is not an ISO 4217 currency code")
    return code


def parse_amount(value: object, currency: str) -> Decimal:
    """An exact, non-negative amount with at most the currency's minor digits. A JSON number is
    taken when it is an integer (a float such as 0.1 is not exact); text is the usual form."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidMoney("must be a decimal number as text, e.g. \"12.50\"")
    text = str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidMoney(f"{text[:40]!r} is not a decimal number") from None
    if not amount.is_finite() or "e" in text.lower():
        raise InvalidMoney("must be a plain decimal number")
    if amount < 0:
        raise InvalidMoney("must not be negative")
    if amount >= MAX_AMOUNT:
        raise InvalidMoney("is too large")
    digits = MINOR_UNITS[currency]
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits and amount != amount.quantize(Decimal(1).scaleb(-digits)):
        raise InvalidMoney(f"{currency} has {digits} decimal places at most")
    return amount.quantize(Decimal(1).scaleb(-digits))


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount with exactly the currency's minor digits."""
    return str(amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))))
