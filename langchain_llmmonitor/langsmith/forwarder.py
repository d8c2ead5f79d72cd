"""Delivers the store's outbox to LangSmith, as feedback on each trace's root run: confirmed, retried, never doubled.

How feedback is sent, and why (read from langsmith 0.15.1's `Client.create_feedback`):
- Given `trace_id`, `create_feedback` hands the feedback to the SDK's background queue whenever the client has one
  (`auto_batch_tracing=True`, the default): it returns before anything is sent, nothing confirms delivery, and the
  batch is dropped after three failed attempts. So the forwarder only uses a client without that queue
  (`Client(auto_batch_tracing=False)`); there `create_feedback` always takes its synchronous path, a POST /feedback
  that raises on failure, still carrying `trace_id`, `session_id` and our stable `feedback_id`. Public API only.
  A client you pass must be built the same way: the constructor refuses one with a background queue.
- `stop_after_attempt=1` turns off `create_feedback`'s own retries (sleeps of 2**i s, and Retry-After * 2**i on
  429, for up to 10 attempts); the default client's transport retries once on a failed connection only, never on a
  status or a read timeout. A pass never sleeps inside the SDK: all waiting is done here, durably, with backoff.
- `session_id`: the item's project (else LANGSMITH_PROJECT, else "default") is resolved with `read_project`, created
  with `create_project` when LangSmith does not know it (a 409 there means another process created it meanwhile: read
  again), and cached. Feedback is never sent without it (the SDK warns that path will stop working). These requests
  are part of the item's attempt: their failures are classified like the send's.
- The SDK's exceptions do not carry the HTTP status or headers, but it raises them while handling the
  `requests.HTTPError`, so the response is on the exception's `__context__` chain: status and Retry-After come from
  there.
- With LANGSMITH_TRACING_SAMPLING_RATE < 1 the SDK skips feedback on traces it did not sample (their runs were never
  sent either) without a request; such items count as delivered.

What each answer does (the `reason` label of `llm_feedback_delivery_failures_total` in brackets):
- 2xx, or 409 (a feedback with this id exists: an earlier attempt landed) → delivered.
- connection error [unavailable], read timeout [timeout], 408 or 5xx [unavailable], 429 [rate_limited]: LangSmith
  as a whole is in trouble, so the whole forwarder pauses (see below); the item and the rest of its batch are due
  again when the pause ends, with no backoff of their own.
- 401/403 [auth] → the pass stops and the rest of the batch waits with the item, which is retried every
  `max_backoff`: a key or a permission can be fixed, and nothing is lost meanwhile.
- 404 [not_found] → retried with backoff (LangSmith may not have ingested the run yet), parked after
  `not_found_attempts` attempts.
- 400, 422 and any other 4xx, or arguments the SDK itself refuses [rejected] → parked at once as dead, with the
  error, in `Store.dead_items()`: retrying cannot change the answer.
- anything else [error] → retried with backoff.

The service-wide pause: one backoff for LangSmith, not one per item, so that a 429 or an outage is not met with a
request per item of the outbox. After such a failure nothing at all is sent (by the thread or by `flush`) until the
pause ends: `base_backoff` doubling with each consecutive service failure, with jitter, up to `max_outage_probe`
(short, so that delivery resumes within seconds of a long outage's end), or the Retry-After when longer. Then a
single item probes LangSmith; the first answer that is not a service failure ends the pause and full batches follow
back to back. Per-item backoffs (404, auth, errors) stay per item. The pause is per forwarder: other processes on
the same store find an outage themselves, but the items it released are not due before its end for them either.

Delivered items are deleted `delivered_retention` after delivery, by a pass every few minutes.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import requests
import urllib3
from langsmith import Client
from langsmith.utils import LangSmithConflictError, LangSmithNotFoundError, LangSmithRetry, get_tracer_project
from prometheus_client import CollectorRegistry

from ..config import LangSmithConfig
from ..core.records import OutboxItem, utcnow
from ..core.text import scrub
from ..core.vocabulary import USER_FEEDBACK_CHANGE
from ..telemetry.logs import default_logger
from ..telemetry.metrics import metrics_for
from ..workers import Worker

if TYPE_CHECKING:
    from ..storage.store import Store

# How far a failure reaches: this item only, every item sent with this key (stop the pass), LangSmith as a whole
# (pause the forwarder), or never retry this item.
_ITEM, _ACCOUNT, _SERVICE, _PERMANENT = "item", "account", "service", "permanent"
_PRUNE_EVERY_S = 300.0
_MAX_ERROR_CHARS = 500
# One immediate retry when a connection cannot be made or was dropped; statuses and read timeouts are ours to handle.
_TRANSPORT_RETRY = LangSmithRetry(
    total=1, connect=1, read=0, status=0, other=0, backoff_factor=0, allowed_methods=None, raise_on_status=False
)

_sending = threading.local()


class _QuietWhileForwarding(logging.Filter):
    """The SDK logs every failed `create_feedback` at ERROR with a traceback; for us a failure is routine, counted
    and logged once with structlog, so those records are dropped, only on the thread that is forwarding."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_sending, "active", False)


_QUIET = _QuietWhileForwarding()


@dataclass(frozen=True)
class _Failure:
    reason: str
    scope: str
    error: str
    retry_after: float | None = None


class _Pass(NamedTuple):
    delivered: int
    wait: float  # before the next pass is worth making: 0 when more is due at once


class _Turn(NamedTuple):
    limit: int  # items a pass may claim: 0 while paused, 1 to probe
    wait: float  # when limit is 0, how long until it may be more
    probe: bool


class _ServicePause:
    """The one backoff for LangSmith as a whole, shared by every pass of a forwarder (its thread and `flush`)."""

    def __init__(self, config: LangSmithConfig, rng: Callable[[], float]) -> None:
        self._config = config
        self._rng = rng
        self._lock = threading.Lock()
        self._failures = 0  # consecutive service failures
        self._until = 0.0  # time.monotonic() when the pause ends
        self._probing = False

    def turn(self) -> _Turn:
        """What the next pass may do: nothing during the pause, one item (a single probe) just after it."""
        with self._lock:
            remaining = self._until - time.monotonic()
            if remaining > 0:
                return _Turn(0, remaining, False)
            if not self._failures:
                return _Turn(self._config.batch_size, 0.0, False)
            if self._probing:
                return _Turn(0, self._config.poll_interval_seconds, False)
            self._probing = True
            return _Turn(1, 0.0, True)

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._until - time.monotonic())

    def failed(self, retry_after: float | None) -> float:
        """LangSmith failed as a whole: start the next, longer pause; returns its length in seconds."""
        config = self._config
        with self._lock:
            self._failures += 1
            ceiling = min(
                config.max_outage_probe_seconds, config.base_backoff_seconds * 2 ** min(self._failures - 1, 62)
            )
            pause = max(ceiling * (1 - config.jitter * self._rng()), retry_after or 0.0)
            self._until = time.monotonic() + pause
            self._probing = False
            return pause

    def answered(self) -> int:
        """LangSmith answered: the pause is over; returns how many service failures in a row it ends."""
        with self._lock:
            ended, self._failures, self._probing = self._failures, 0, False
            return ended

    def probe_done(self) -> None:
        with self._lock:
            self._probing = False


class Forwarder(Worker[None]):
    """Sends due outbox items to LangSmith from a daemon thread (`start`), or on demand (`deliver_once`, `flush`).

    Several forwarders, in one process or many, can share a store: items are leased while being sent. `close()`
    stops the thread; what is not delivered stays in the outbox for the next forwarder on the store.
    """

    def __init__(
        self,
        store: Store,
        *,
        client: Client | None = None,
        config: LangSmithConfig | None = None,
        registry: CollectorRegistry | None = None,
        logger: Any = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """
        Args:
            store: where the outbox lives.
            client: a `langsmith.Client` built with `auto_batch_tracing=False`; by default one is made from the
                environment (LANGSMITH_API_KEY, LANGSMITH_ENDPOINT...) when there is first something to send.
            config: batch size, polling, backoff, leases, timeouts and retention (`LangSmithConfig`).
            registry: where the delivery metrics live; a private registry by default.
            logger: a structlog logger; `structlog.get_logger("langchain_llmmonitor")` by default.
            rng: the jitter's random source in [0, 1) (tests pin it).
        """
        if client is not None and getattr(client, "tracing_queue", None) is not None:
            raise ValueError(
                "this langsmith.Client queues feedback in the background, where delivery is never confirmed: "
                "build it with Client(auto_batch_tracing=False)"
            )
        config = config if config is not None else LangSmithConfig()
        super().__init__(name="llmmonitor-outbox", idle_wait=config.poll_interval_seconds)
        self.config = config
        self._store = store
        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()
        self._metrics = metrics_for(registry if registry is not None else CollectorRegistry())
        self._log = logger if logger is not None else default_logger()
        self._rng = rng
        self._pause = _ServicePause(config, rng)
        self._sessions: dict[str, str] = {}
        self._next_prune = 0.0
        if _QUIET not in logging.getLogger("langsmith.client").filters:
            logging.getLogger("langsmith.client").addFilter(_QUIET)

    # Running --------------------------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Deliver what is due, waiting out backoffs, pauses and leases, until the outbox is empty (True) or `timeout`
        passes.

        For shutdown and tests; safe beside the running thread. Parked items do not count as pending.
        """
        deadline = time.monotonic() + (60.0 if timeout is None else timeout)
        while True:
            wait = self._guarded_pass().wait
            if wait == 0:
                if time.monotonic() >= deadline:
                    return self._store.pending_count() == 0
                continue
            if self._store.pending_count() == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, wait))

    def deliver_once(self) -> int:
        """One pass: claim up to `batch_size` due items (none during a pause, one to probe after it), send them,
        record the outcomes; returns how many landed."""
        return self._pass().delivered

    def _work(self, batch: list[None]) -> float | None:
        """The thread's pass; no wait before the next one when a full batch was due, the pause's rest during one."""
        return self._guarded_pass().wait

    def _guarded_pass(self) -> _Pass:
        try:
            return self._pass()
        except Exception as error:  # noqa: BLE001 - e.g. the database is briefly unavailable; try again
            self._log.error("feedback_outbox_pass_failed", error=_describe(error))
            return _Pass(delivered=0, wait=self.config.poll_interval_seconds)

    def _drain(self, timeout: float) -> bool:
        """Nothing to finish at close: undelivered items are in the store, claimed ones come back when their lease
        ends."""
        return True

    def _release(self) -> None:
        self._close_client()

    def _reset_after_fork(self) -> None:
        self._client_lock = threading.Lock()
        self._pause = _ServicePause(self.config, self._rng)
        if self._owns_client:
            self._client = None  # the parent's connections are the parent's

    # One pass -------------------------------------------------------------------------------------------------------

    def _pass(self) -> _Pass:
        self._prune_if_due()
        turn = self._pause.turn()
        if turn.limit == 0:
            return _Pass(delivered=0, wait=turn.wait)
        try:
            items = self._store.claim_due(turn.limit, lease_seconds=self.config.lease_seconds)
            delivered, stopped_for = self._send_batch(items)
        finally:
            if turn.probe:
                self._pause.probe_done()
        if stopped_for is not None:
            return _Pass(delivered, stopped_for)
        return _Pass(delivered, 0.0 if len(items) == turn.limit else self.config.poll_interval_seconds)

    def _send_batch(self, items: list[OutboxItem]) -> tuple[int, float | None]:
        """Send claimed items in order; returns how many landed and, when a failure stopped the batch, how long to
        wait. The unsent rest is released, uncharged, to when it may be sent."""
        if not items:
            return 0, None
        delivered, client = 0, self._langsmith()
        for index, item in enumerate(items):
            paused_for = self._pause.remaining()
            if paused_for > 0:  # another pass (a flush beside the thread) has just met an outage
                self._store.release(_ids(items[index:]), _after(paused_for))
                return delivered, paused_for
            failure = self._send(client, item)
            if failure is not None and failure.scope == _SERVICE:
                pause = self._pause.failed(failure.retry_after)
                self._store.release(_ids(items[index + 1 :]), self._record_failure(item, failure, pause))
                return delivered, pause
            ended = self._pause.answered()
            if ended:
                self._log.info("feedback_delivery_resumed", after_failures=ended)
            if failure is None:
                delivered += 1
                continue
            retry_at = self._record_failure(item, failure)
            if failure.scope == _ACCOUNT:
                self._store.release(_ids(items[index + 1 :]), retry_at)
                return delivered, self.config.poll_interval_seconds
        return delivered, None

    def _send(self, client: Client, item: OutboxItem) -> _Failure | None:
        payload = item.payload
        _sending.active = True
        try:
            if item.kind == USER_FEEDBACK_CHANGE:  # the user changed their rating: update the feedback sent before
                client.update_feedback(
                    payload["feedback_id"], score=payload["score"], value=payload["value"], comment=payload["comment"]
                )
            else:
                self._create(client, item)
        except Exception as error:  # noqa: BLE001 - every failure is classified, none escapes
            failure = _classify(error)
            if failure is not None:
                return failure
        finally:
            _sending.active = False
        self._store.mark_delivered([item.id], version=item.created_at)
        self._metrics.feedback_delivered(item.kind).inc()
        self._log.debug(
            "feedback_delivered", feedback_id=item.id, kind=item.kind, key=payload["key"], attempts=item.attempts + 1
        )
        return None

    def _create(self, client: Client, item: OutboxItem) -> None:
        payload = item.payload
        client.create_feedback(
            run_id=payload["run_id"],
            key=payload["key"],
            score=payload["score"],
            value=payload["value"],
            trace_id=payload["trace_id"],
            comment=payload["comment"],
            source_info=payload["source_info"],
            feedback_source_type=payload["feedback_source_type"],
            feedback_id=item.id,
            session_id=self._session_id(client, payload.get("project")),
            stop_after_attempt=1,
        )

    def _record_failure(self, item: OutboxItem, failure: _Failure, pause: float | None = None) -> datetime:
        """Store the failed attempt and count it; returns when the item is due again: when the service-wide `pause`
        ends, else after its own backoff."""
        self._metrics.feedback_delivery_failures(failure.reason).inc()
        attempts = item.attempts + 1
        fields = dict(
            feedback_id=item.id, kind=item.kind, key=item.payload.get("key"), attempts=attempts, reason=failure.reason
        )
        if failure.scope == _PERMANENT or (
            failure.reason == "not_found" and attempts >= self.config.not_found_attempts
        ):
            self._store.mark_dead(item.id, failure.error)
            self._log.error("feedback_parked", error=failure.error, **fields)
            return utcnow()
        delay = pause if pause is not None else self._delay(item.attempts, failure)
        retry_at = _after(delay)
        self._store.mark_failed(item.id, failure.error, retry_at)
        self._log.warning("feedback_delivery_failed", error=failure.error, retry_in_s=round(delay, 3), **fields)
        return retry_at

    def _delay(self, previous_attempts: int, failure: _Failure) -> float:
        config = self.config
        if failure.reason == "auth":
            ceiling = config.max_backoff_seconds
        else:
            ceiling = min(config.max_backoff_seconds, config.base_backoff_seconds * 2 ** min(previous_attempts, 62))
        return ceiling * (1 - config.jitter * self._rng())

    def _prune_if_due(self) -> None:
        """Delete items delivered more than `delivered_retention_seconds` ago, at most every few minutes."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_EVERY_S
        before = utcnow() - timedelta(seconds=self.config.delivered_retention_seconds)
        pruned = self._store.purge_delivered(before)
        if pruned:
            self._log.info("feedback_outbox_pruned", items=pruned, delivered_before=before.isoformat())

    # LangSmith ------------------------------------------------------------------------------------------------------

    def _langsmith(self) -> Client:
        with self._client_lock:
            if self._client is None:
                timeout_ms = int(self.config.request_timeout_seconds * 1000)
                self._client = Client(
                    auto_batch_tracing=False,
                    retry_config=_TRANSPORT_RETRY,
                    timeout_ms=(timeout_ms, timeout_ms),
                )
            return self._client

    def _close_client(self) -> None:
        with self._client_lock:
            client, owned = self._client, self._owns_client
            if owned:
                self._client = None
        if owned and client is not None:
            client.close(timeout=0)

    def _session_id(self, client: Client, project: str | None) -> str:
        """The id of the project the trace was sent to, created when LangSmith does not know it yet."""
        name = project or get_tracer_project() or "default"
        cached = self._sessions.get(name)
        if cached is not None:
            return cached
        try:
            session_id = str(client.read_project(project_name=name).id)
        except LangSmithNotFoundError:
            session_id = self._create_project(client, name)
        self._sessions[name] = session_id
        return session_id

    def _create_project(self, client: Client, name: str) -> str:
        """Create the project LangSmith does not know; when another process just did, read that one."""
        try:
            created = str(client.create_project(name).id)
        except LangSmithConflictError:
            created = None
        if created is None:
            # Read outside the handler: a failure here must not carry the 409, which `_classify` takes for "delivered".
            return str(client.read_project(project_name=name).id)
        self._log.info("langsmith_project_created", project=name, session_id=created)
        return created


def _after(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def _ids(items: list[OutboxItem]) -> list[str]:
    return [item.id for item in items]


# Classifying failures -----------------------------------------------------------------------------------------------


def _classify(error: Exception) -> _Failure | None:
    """What a `create_feedback` exception means for the item; None when the feedback in fact exists."""
    status, retry_after = _http_status(error)
    if isinstance(error, LangSmithConflictError) or status == 409:
        return None
    described = _describe(error, status)
    if status == 429:
        return _Failure("rate_limited", _SERVICE, described, retry_after)
    if status in (401, 403):
        return _Failure("auth", _ACCOUNT, described)
    if status == 404:
        return _Failure("not_found", _ITEM, described)
    if status is not None and (status == 408 or status >= 500):
        return _Failure("unavailable", _SERVICE, described, retry_after)
    if status is not None and status >= 400:
        return _Failure("rejected", _PERMANENT, described)
    links = list(_chain(error))
    # urllib3's NewConnectionError (refused, unresolvable) subclasses its timeout error: test it first.
    if any(isinstance(link, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)) for link in links):
        return _Failure("unavailable", _SERVICE, described)
    if any(isinstance(link, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)) for link in links):
        return _Failure("timeout", _SERVICE, described)
    if any(isinstance(link, (requests.ConnectionError, ConnectionError)) for link in links):
        return _Failure("unavailable", _SERVICE, described)
    if isinstance(error, (ValueError, TypeError)):  # refused by the SDK before sending: it will not change
        return _Failure("rejected", _PERMANENT, described)
    return _Failure("error", _ITEM, described)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _http_status(error: BaseException) -> tuple[int | None, float | None]:
    """The HTTP status and Retry-After (seconds) of the response behind an SDK exception, when there was one."""
    for link in _chain(error):
        response = getattr(link, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status, _seconds(response.headers.get("retry-after"))
    return None, None


def _seconds(retry_after: str | None) -> float | None:
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(retry_after) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


def _describe(error: BaseException, status: int | None = None) -> str:
    """A short, credential-free error text: the SDK appends a partly masked API key to connection errors."""
    text = re.sub(r"\n?API Key:[^\n]*", "", f"{type(error).__name__}: {error}")
    prefix = f"HTTP {status}: " if status is not None else ""
    return scrub(prefix + text)[:_MAX_ERROR_CHARS]
