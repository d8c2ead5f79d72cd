"""Ready-made `CaptureConfig(redact=...)` functions for personal data: e-mail addresses, phone numbers and payment card
numbers, alone or combined with the application's own functions.

Credentials need none of this: every captured text is scrubbed of them anyway (`core.text.scrub`). Personal data is
opt-in because what counts as personal depends on the application, and each pattern has a price in false positives.
So the patterns are narrow: a phone number is a shape people write one in (a `+` country code, or separators between
digit groups of a national number), never a bare run of digits, so that prices, years, order ids and timestamps stay;
a card number must pass the Luhn check and start as a card issuer's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"

_EMAIL = re.compile(
    r"@(?<=[A-Za-z0-9._%+-]@)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_LOCAL_PART = re.compile(r"[A-Za-z0-9._%+-]{1,64}\Z")
_PHONE = re.compile(
    r"(?<![\w+#./-])(?:"
    r"\+(?:\(\d{1,4}\)|\d)(?:[ .-]?(?:\(\d{1,4}\)|\d)){6,18}"  # +44 20 7946 0958, +1 (415) 555-0132, +4915123456789
    r"|(?:1[ .-]?)?(?:\([2-9]\d\d\)[ .-]?|[2-9]\d\d[ .-])[2-9]\d\d[ .-]\d{4}"  # (415) 555-0132, 1-800-555-0199
    r"|\(?0\d{1,4}\)?(?P<sep>[ .-])\d{2,8}(?:(?P=sep)\d{2,8}){0,3}"  # 06 12 34 56 78, 020 7946 0958, 030 12345678
    r")(?![\w/-]|[.,:]\d)",
    re.ASCII,
)
_CARD = re.compile(
    r"(?<![\w.,-])(?:\d{13,19}"  # 4111111111111111
    r"|\d{4}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,4}(?:(?P=sep)\d{3})?"  # 4111 1111 1111 1111
    r"|\d{4}(?P<amex>[ -])\d{6}(?P=amex)\d{4,5}"  # 3782 822463 10005
    r")(?![\w-]|[.,]\d)",
    re.ASCII,
)
_DIGITS_AS_ZERO = bytes(48 if 48 <= byte <= 57 else 120 for byte in range(256))  # "0" for a digit, else "x"
_NUMBER_SEPARATORS = b" .-()+"
_PHONE_DIGITS = {"+": (8, 15), "0": (9, 11)}  # by first character; other shapes are North American: 10 or 11
_CARD_PREFIXES = re.compile(r"4|5[1-5]|2(?:2[2-9]|[3-6]|7[01]|720)|3[47]|3[0689]|35|6(?:011|4[4-9]|5)|62")


def redact_emails(text: str) -> str:
    """E-mail addresses replaced by `[email]`."""
    if "@" not in text:
        return text
    pieces, done = [], 0
    for match in _EMAIL.finditer(text):
        local = _LOCAL_PART.search(text, max(done, match.start() - 64), match.start())
        if local is None:
            continue
        pieces += (text[done : local.start()], EMAIL)
        done = match.end()
    return text if not pieces else "".join(pieces) + text[done:]


def redact_phones(text: str) -> str:
    """Phone numbers in the shapes people write them replaced by `[phone]`; bare digit runs are left alone."""
    return _PHONE.sub(_phone, text) if _digits_in_a_row(text, 8) else text


def redact_cards(text: str) -> str:
    """Payment card numbers (Luhn-checked, with an issuer's prefix) replaced by `[card]`."""
    return _CARD.sub(_card, text) if _digits_in_a_row(text, 13) else text


def _digits_in_a_row(text: str, count: int) -> bool:
    """Whether `count` digits follow one another once separators are dropped: a test in C, some ten times cheaper
    than the patterns, which most text (few numbers, short ones) then skips."""
    squeezed = text.encode("utf-8", "ignore").translate(_DIGITS_AS_ZERO, _NUMBER_SEPARATORS)
    return b"0" * count in squeezed


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    digits = sum(char.isdigit() for char in found)
    low, high = _PHONE_DIGITS.get(found.lstrip("(")[0], (10, 11))
    return PHONE if low <= digits <= high else found


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if 13 <= len(digits) <= 19 and _CARD_PREFIXES.match(digits) and _luhn_valid(digits):
        return CARD
    return match.group()


def _luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (and 9 in 10 random digit strings do not)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class Redactor:
    """A `CaptureConfig(redact=...)` function made of the kinds of personal data to replace and of the application's
    own text-to-text functions, applied in that order.

        CaptureConfig(redact=Redactor(emails=True, phones=True, cards=True))
        CaptureConfig(redact=Redactor(mask_customer_ids, emails=True))
    """

    def __init__(
        self, *functions: Callable[[str], str], emails: bool = False, phones: bool = False, cards: bool = False
    ) -> None:
        for function in functions:
            if not callable(function):
                raise TypeError(f"Redactor takes functions from text to text, got {function!r}")
        kinds = {"emails": emails, "phones": phones, "cards": cards}
        self.kinds = tuple(name for name, wanted in kinds.items() if wanted)
        # Cards before phones: a card's digit groups could otherwise be taken for a phone number.
        built_in = {"cards": redact_cards, "phones": redact_phones, "emails": redact_emails}
        self.steps = (*(step for name, step in built_in.items() if name in self.kinds), *functions)

    def __call__(self, text: str) -> str:
        for step in self.steps:
            text = step(text)
        return text

    def __repr__(self) -> str:
        parts = [getattr(step, "__name__", repr(step)) for step in self.steps[len(self.kinds) :]]
        parts += [f"{name}=True" for name in self.kinds]
        return f"Redactor({', '.join(parts)})"


EMAILS = Redactor(emails=True)
PHONES = Redactor(phones=True)
CARDS = Redactor(cards=True)
PERSONAL_DATA = Redactor(emails=True, phones=True, cards=True)
