"""Feedback tokens: bound to one run, expiring, unforgeable without the secret, and compact enough for a URL."""

from __future__ import annotations

import base64
import hmac
import re
import uuid
from datetime import timedelta

import pytest

from langchain_llmmonitor.feedback import tokens as feedback_tokens
from langchain_llmmonitor.feedback.tokens import (
    ExpiredFeedbackToken,
    FeedbackTokenError,
    FeedbackTokens,
    InvalidFeedbackToken,
)

SECRET = "s" * 32
RUN_A = "6f1c5d3e-8a4b-4c2d-9e0f-1a2b3c4d5e6f"
RUN_B = "0b7e2f9a-3c1d-4e5f-8a6b-7c8d9e0f1a2b"
T0 = 1_800_000_000.0


class Clock:
    """A settable Unix-seconds clock."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> FeedbackTokens:
    return FeedbackTokens(SECRET, ttl=timedelta(hours=1), clock=clock)


def flip(token: str, index: int) -> str:
    """The token with one bit of its decoded byte `index` flipped, re-encoded canonically."""
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_issued_token_verifies_for_its_run_and_is_url_safe_and_compact(tokens: FeedbackTokens) -> None:
    """The happy path: a token fits in a URL unescaped and verifies for the run it was issued for."""
    token = tokens.issue(RUN_A)
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,40}", token)
    tokens.verify(token, RUN_A)


def test_token_for_one_run_does_not_work_for_another(tokens: FeedbackTokens) -> None:
    """A client holding run A's token cannot rate run B."""
    with pytest.raises(InvalidFeedbackToken):
        tokens.verify(tokens.issue(RUN_A), RUN_B)


def test_uuid_spelling_does_not_matter(tokens: FeedbackTokens) -> None:
    """A UUID object, upper case and braces all name the same run, so the token works for each spelling."""
    token = tokens.issue(uuid.UUID(RUN_A))
    tokens.verify(token, RUN_A.upper())
    tokens.verify(token, "{" + RUN_A + "}")


def test_non_uuid_ids_are_bound_exactly(tokens: FeedbackTokens) -> None:
    """Request ids are application text: a token for "req-1" is not one for "req-10" or "REQ-1"."""
    token = tokens.issue("req-1")
    tokens.verify(token, "req-1")
    for other in ("req-10", "REQ-1", "req-"):
        with pytest.raises(InvalidFeedbackToken):
            tokens.verify(token, other)


def test_expired_token_is_refused_as_expired(tokens: FeedbackTokens, clock: Clock) -> None:
    """Valid up to the last second of the ttl, expired from then on, with a distinct error naming the time."""
    token = tokens.issue(RUN_A)
    clock.now = T0 + 3600 - 1
    tokens.verify(token, RUN_A)
    clock.now = T0 + 3600
    with pytest.raises(ExpiredFeedbackToken, match="expired at 2027-01-15T09:00:00"):
        tokens.verify(token, RUN_A)


def test_forged_expiry_is_invalid_not_expired(tokens: FeedbackTokens, clock: Clock) -> None:
    """Extending an expired token's expiry breaks the MAC; the forgery is told "invalid", never "expired"."""
    token = tokens.issue(RUN_A)
    clock.now = T0 + 7200
    with pytest.raises(InvalidFeedbackToken):
        tokens.verify(flip(token, 6), RUN_A)  # a bit of the expiry's high bytes


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="version"),
        pytest.param(8, id="expiry-low-byte"),
        pytest.param(9, id="mac-first-byte"),
        pytest.param(24, id="mac-last-byte"),
    ],
)
def test_any_tampered_byte_is_refused(tokens: FeedbackTokens, index: int) -> None:
    """Every byte of the token is covered: version, expiry and MAC."""
    with pytest.raises(InvalidFeedbackToken):
        tokens.verify(flip(tokens.issue(RUN_A), index), RUN_A)


def test_token_from_another_secret_is_refused(tokens: FeedbackTokens, clock: Clock) -> None:
    """A token is only as good as the secret: one made with any other key does not verify."""
    other = FeedbackTokens("t" * 32, ttl=timedelta(hours=1), clock=clock)
    with pytest.raises(InvalidFeedbackToken):
        tokens.verify(other.issue(RUN_A), RUN_A)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("AQAAAABrDyl_r5u-4CqKDfzBjuzFAFmkM", id="one-char-short"),
        pytest.param("AQAAAABrDyl_r5u-4CqKDfzBjuzFAFmkMwA", id="one-char-long"),
        pytest.param("!" * 34, id="not-base64"),
        pytest.param("A" * 10_000, id="huge"),
        pytest.param(None, id="none"),
        pytest.param(12345, id="number"),
    ],
)
def test_malformed_tokens_are_invalid(tokens: FeedbackTokens, token: object) -> None:
    """Junk of any shape or type is an InvalidFeedbackToken, never a crash or another exception."""
    with pytest.raises(InvalidFeedbackToken):
        tokens.verify(token, RUN_A)


def test_non_canonical_base64_spelling_is_refused(tokens: FeedbackTokens) -> None:
    """The last character's spare bits are ignored by base64, so a second spelling would decode alike: refused."""
    token = tokens.issue(RUN_A)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 0x01]  # 34 chars = 25 bytes + 4 spare bits
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(token + "==")
    with pytest.raises(InvalidFeedbackToken):
        tokens.verify(twin, RUN_A)


def test_mac_is_compared_in_constant_time(tokens: FeedbackTokens, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification goes through hmac.compare_digest, so timing does not reveal how much of a forged MAC matched."""
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(feedback_tokens.hmac, "compare_digest", spy)
    token = tokens.issue(RUN_A)
    tokens.verify(token, RUN_A)
    with pytest.raises(InvalidFeedbackToken):
        tokens.verify(token, RUN_B)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("x" * 31, id="31-chars"),
        pytest.param(b"", id="empty-bytes"),
        pytest.param("é" * 15, id="30-bytes"),
    ],
)
def test_short_secrets_are_refused_with_a_way_to_make_one(secret: str | bytes) -> None:
    """A guessable secret would make every token forgeable: fewer than 32 bytes is refused, saying how to make one."""
    with pytest.raises(ValueError, match=r"at least 32 are needed.*secrets\.token_urlsafe"):
        FeedbackTokens(secret)


def test_secret_length_is_counted_in_bytes() -> None:
    """Sixteen two-byte characters are 32 bytes: accepted, and tokens from str and bytes forms agree."""
    secret = "é" * 16
    token = FeedbackTokens(secret, clock=lambda: T0).issue(RUN_A)
    FeedbackTokens(secret.encode(), clock=lambda: T0).verify(token, RUN_A)


def test_both_refusals_are_feedback_token_errors_and_value_errors() -> None:
    """Callers can catch one type for "refuse the rating" and still tell forged from expired."""
    for error in (InvalidFeedbackToken, ExpiredFeedbackToken):
        assert issubclass(error, FeedbackTokenError)
        assert issubclass(error, ValueError)
    assert not issubclass(InvalidFeedbackToken, ExpiredFeedbackToken)


def test_ttl_below_one_second_is_refused() -> None:
    """A token that is born expired is a configuration mistake, reported at once."""
    with pytest.raises(ValueError, match="ttl"):
        FeedbackTokens(SECRET, ttl=timedelta(milliseconds=500))
