"""Text that leaves the process (log lines, stored errors, judge reasons, LangSmith comments, captured text) never
carries a credential, and text that is stored is valid for every backend.

`scrub` replaces the common credential formats: cloud keys (AWS, Google, Azure), VCS and chat tokens (GitHub, GitLab,
Slack, Discord webhooks), payment keys (Stripe), model-provider keys (OpenAI, Anthropic, LangSmith, Hugging Face),
JWTs, bearer tokens, passwords in URLs, PEM private keys and `key=value` secrets. The formats follow the rules of
Yelp's detect-secrets and of gitleaks (tests/test_scrubbing.py holds their samples); neither library is used, because
both scan files line by line, report findings rather than replace them, and cost milliseconds per message. Here each
rule is one compiled pattern led by a literal (which the regex engine skips to), or guarded by a substring test, so
text without any credential (nearly all text) is scrubbed in microseconds although it happens per error and per
evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REDACTED = "[REDACTED]"
MAX_ERROR_CHARS = 300
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"

_KEEP = r"\g<keep>" + REDACTED  # a rule with a `keep` group replaces only what follows that group
_SCHEMES = r"bearer|basic|token|digest"
_SECRET_KEYS = (  # lower case: matched in the lower-cased text
    r"api[_-]?key|apikey|access[_-]?key|accountkey|private[_-]?key|secret|token|pass(?:w(?:or)?d|phrase)?|pwd"
    r"|auth(?:orization)?|credentials?|cookie|sharedaccesssignature|[?&;]sig"  # a SAS signature
)
_KEY_VALUE = re.compile(
    rf"(?:{_SECRET_KEYS})[\"']?\s*[:=]\s*[\"']?(?:(?:{_SCHEMES})\s+|(?!(?:{_SCHEMES})\s))(?!\[redacted\])"
    r"(?P<value>[^\s\"',;}&<>]{4,})"
)
_KEY_VALUE_ANY_CASE = re.compile(_KEY_VALUE.pattern, re.IGNORECASE)
_KEY_VALUE_TRIGGERS = ("key", "secret", "token", "pass", "pwd", "auth", "credential", "cookie", "sig=", "signature")


@dataclass(frozen=True, slots=True)
class _Rule:
    """One credential format. A pattern that starts with a literal is cheap to run on any text (the regex engine
    skips to that literal); one that cannot runs only when the lower-cased text contains its `trigger`."""

    name: str
    pattern: re.Pattern[str]
    replacement: str = REDACTED
    trigger: str | None = None


def _rule(name: str, pattern: str, *, keep: bool = False, trigger: str | None = None, flags: int = 0) -> _Rule:
    return _Rule(name, re.compile(pattern, flags), _KEEP if keep else REDACTED, trigger)


# Ordered: key blocks and URLs first, so that a token inside them goes with its surroundings; `key=value` pairs come
# last (`scrub`), skipping values already replaced. Lookbehinds come after a pattern's leading literal, so as not to
# hide it from the engine.
_RULES = (
    _rule(
        "private-key",
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|\Z)",  # a block cut short is redacted to the end
        flags=re.DOTALL,
    ),
    _rule("url-password", r"(?P<keep>://[^\s:/?#@\"'<>{}\[\]]*:)[^\s/?#\"'<>{}]+(?=@)", keep=True),  # to the last @
    _rule(
        "slack-webhook",
        r"(?P<keep>https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/-]+",
        keep=True,
    ),
    _rule(
        "discord-webhook",
        r"(?P<keep>/api/webhooks/)(?:(?<=discord\.com/api/webhooks/)|(?<=discordapp\.com/api/webhooks/))[\w/-]+",
        keep=True,
    ),
    _rule("jwt", r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{8,}={0,2}\.ey[A-Za-z0-9_-]{8,}={0,2}(?:\.[A-Za-z0-9_+/-]*={0,2})*"),
    _rule("bearer", r"(?P<keep>(?i:\bbearer)\s+)[A-Za-z0-9._~+/=-]{8,}", keep=True, trigger="bearer"),
    _rule(
        "aws-access-key-id",
        r"A(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])",
    ),
    _rule(
        "aws-secret-access-key",
        r"(?P<keep>(?i:aws)[\w .-]{0,20}?(?i:secret|key)[\w .-]{0,20}?[\"']?\s*[:=]?\s*[\"']?)"
        r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
        keep=True,
        trigger="aws",
    ),
    _rule("google-api-key", r"AIza(?<![\w-]AIza)[0-9A-Za-z_-]{20,}"),
    _rule(
        "azure-client-secret",
        r"(?<![\w~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![\w~.-])",
        trigger="q~",
    ),
    _rule("github-token", r"gh(?<![A-Za-z0-9_]gh)[pousr]_[A-Za-z0-9]{30,}"),
    _rule("github-fine-grained-token", r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{22,}"),
    _rule(
        "gitlab-token",
        r"gl(?<![A-Za-z0-9_-]gl)(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas|ffct)-[A-Za-z0-9_.-]{20,}",
    ),
    _rule("gitlab-runner-token", r"GR1348941(?<![A-Za-z0-9_-]GR1348941)[A-Za-z0-9_-]{20,}"),
    _rule("slack-token", r"xox(?<![A-Za-z0-9]xox)[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]{10,}"),
    _rule("slack-app-token", r"xapp-(?<![A-Za-z0-9]xapp-)\d-[A-Za-z0-9-]{10,}"),
    # OpenAI and Anthropic (sk-...), Stripe (sk_live_..., rk_test_..., pk_live_...): one literal-led rule per letter
    *(
        _rule(
            f"{letter}k-key",
            rf"{letter}k(?<![A-Za-z0-9]{letter}k)(?:-[A-Za-z0-9_-]{{8,}}|_(?:live|test|prod)_[A-Za-z0-9]{{10,}})",
        )
        for letter in "srp"
    ),
    _rule("stripe-webhook-secret", r"whsec_(?<![A-Za-z0-9]whsec_)[A-Za-z0-9]{20,}"),
    _rule("langsmith-key", r"lsv2_(?<![A-Za-z0-9]lsv2_)[A-Za-z0-9_]{8,}"),
    _rule("huggingface-token", r"hf_(?<![A-Za-z0-9]hf_)[A-Za-z0-9]{30,}"),
    _rule("npm-token", r"npm_(?<![A-Za-z0-9]npm_)[A-Za-z0-9]{36}"),
    _rule("pypi-token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
)


def scrub(text: str) -> str:
    """Text with anything that looks like a credential replaced by `[REDACTED]`, keeping what names it (the key in
    `password=...`, the user and host of a URL, the `Bearer` scheme) so that the message still says what failed."""
    lowered = text.lower()
    for rule in _RULES:
        if rule.trigger is None or rule.trigger in lowered:
            text = rule.pattern.sub(rule.replacement, text)
    if any(trigger in lowered for trigger in _KEY_VALUE_TRIGGERS):
        text = _redact_values(text)
    return text


def _redact_values(text: str) -> str:
    """`key=value` pairs (api_key, token, password, ...) in any case, matched in the lower-cased text: an order of
    magnitude faster than a case-insensitive pattern."""
    lowered = text.lower()
    pattern = _KEY_VALUE
    if len(lowered) != len(text):  # a character that lower-cases to two would shift the positions
        lowered, pattern = text, _KEY_VALUE_ANY_CASE
    pieces, done = [], 0
    for match in pattern.finditer(lowered):
        start, end = match.span("value")
        pieces += (text[done:start], REDACTED)
        done = end
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def describe_error(error: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """A short, credential-free description of an exception for a log line or a stored row."""
    return scrub(f"{type(error).__name__}: {error}")[:limit]


def clip(text: str | None, limit: int) -> str | None:
    """Scrubbed, then cut to `limit` characters (so no credential is cut in a shape that escapes a rule); None stays
    None."""
    return None if text is None else scrub(text)[:limit]


def storable(text: str, limit: int | None = None) -> str:
    """`text` as every database accepts it: NUL (refused by PostgreSQL) and lone surrogates (refused by SQLite's UTF-8
    encoder) become U+FFFD, and it is cut to `limit` characters."""
    if _UNSTORABLE.search(text) is not None:
        text = _UNSTORABLE.sub(REPLACEMENT, text)
    return text if limit is None else text[:limit]
