"""Signed, expiring, per-run feedback tokens: proof that whoever rates a run was handed that run's answer.

The application issues a token with each answer (`tokens.issue(run_id)`) and the feedback endpoint checks it
(`tokens.verify(token, run_id)`), so a client can rate the runs it was shown and no others, and only for a while.
No state is kept: the token carries its expiry and an HMAC-SHA-256 over (purpose, run id, expiry).

Format: base64url, no padding, of 25 bytes: a version byte, the expiry as 8 big-endian bytes (Unix seconds) and the
first 16 bytes (128 bits, RFC 2104's "at least half the hash length") of the MAC. 34 characters, safe in URLs, JSON
and HTML attributes.

What it does not do: make a token single-use (a repeated submission is a repeated rating; send a `feedback_id` to
make a retry idempotent), or survive a change of secret (every outstanding token becomes invalid).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

MIN_SECRET_BYTES = 32
_VERSION = 1
_MAC_BYTES = 16
_HEADER = struct.Struct(">BQ")  # version, expiry (Unix seconds)
_TOKEN_BYTES = _HEADER.size + _MAC_BYTES
_TOKEN_CHARS = len(base64.urlsafe_b64encode(bytes(_TOKEN_BYTES)).rstrip(b"="))
# Domain separation: a MAC made with the same secret for anything else never verifies as a feedback token.
_PURPOSE = b"langchain-llmmonitor/feedback-token/v1\x00"


class FeedbackTokenError(ValueError):
    """A feedback token was refused."""


class InvalidFeedbackToken(FeedbackTokenError):
    """Not a token this secret issued for this run: malformed, forged, tampered with, or for another run."""


class ExpiredFeedbackToken(FeedbackTokenError):
    """A genuine token for this run whose time is up."""


def bound_id(run_id: str | uuid.UUID) -> str:
    """The id a token is bound to: a UUID in its canonical form (case and braces do not matter), else the text."""
    text = str(run_id)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


class FeedbackTokens:
    """Issues and checks feedback tokens with one secret; thread safe (it holds no mutable state)."""

    def __init__(
        self,
        secret: bytes | str,
        *,
        ttl: timedelta = timedelta(days=7),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        Args:
            secret: at least 32 bytes of randomness (a str is UTF-8 encoded), e.g.
                `python -c "import secrets; print(secrets.token_urlsafe(32))"`. Share it between the processes that
                issue and verify; keep it out of source control.
            ttl: how long a token is accepted after it is issued (whole seconds, at least one).
            clock: the current Unix time in seconds (tests pin it).
        """
        key = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(key, (bytes, bytearray)):
            raise TypeError(f"the feedback token secret must be bytes or str, got {type(secret).__name__}")
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the feedback token secret has {len(key)} bytes; at least {MIN_SECRET_BYTES} are needed. Generate one "
                'with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        ttl_seconds = int(ttl.total_seconds())
        if ttl_seconds < 1:
            raise ValueError(f"ttl must be at least one second, got {ttl!r}")
        self._key = bytes(key)
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self._ttl_seconds)

    def issue(self, run_id: str | uuid.UUID) -> str:
        """A token that lets its holder rate `run_id` (and nothing else) until `ttl` from now."""
        expires = int(self._clock()) + self._ttl_seconds
        header = _HEADER.pack(_VERSION, expires)
        return base64.urlsafe_b64encode(header + self._mac(run_id, header)).rstrip(b"=").decode("ascii")

    def verify(self, token: Any, run_id: str | uuid.UUID) -> None:
        """Return if `token` was issued by this secret for `run_id` and has not expired; raise otherwise.

        Raises:
            InvalidFeedbackToken: malformed, forged, tampered with, or issued for another run. The expiry of such a
                token is never looked at, so a forgery cannot learn anything from the answer.
            ExpiredFeedbackToken: genuine, but past its expiry.
        """
        raw = _decode(token)
        header, mac = raw[: _HEADER.size], raw[_HEADER.size :]
        version, expires = _HEADER.unpack(header)
        if version != _VERSION:
            raise InvalidFeedbackToken(f"unknown feedback token version {version}")
        if not hmac.compare_digest(mac, self._mac(run_id, header)):
            raise InvalidFeedbackToken("the feedback token is not valid for this run")
        if self._clock() >= expires:
            expired_at = datetime.fromtimestamp(expires, UTC).isoformat()
            raise ExpiredFeedbackToken(f"the feedback token expired at {expired_at}")

    def _mac(self, run_id: str | uuid.UUID, header: bytes) -> bytes:
        bound = bound_id(run_id).encode()
        message = _PURPOSE + struct.pack(">I", len(bound)) + bound + header
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]


_RATINGS = uuid.UUID("a7c3e1f0-5b2d-4e8a-9c61-0d4f7b3e2a95")


def rating_id(token: str) -> str:
    """The id of the one rating a token makes: posting the token again changes that rating, never adds one."""
    return str(uuid.uuid5(_RATINGS, token))


def _decode(token: Any) -> bytes:
    if not isinstance(token, str) or len(token) != _TOKEN_CHARS:
        raise InvalidFeedbackToken("malformed feedback token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as error:
        raise InvalidFeedbackToken("malformed feedback token") from error
    # Only the canonical spelling: base64 ignores a last character's spare bits, so others would decode the same.
    if len(raw) != _TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidFeedbackToken("malformed feedback token")
    return raw
