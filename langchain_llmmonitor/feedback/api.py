"""HTTP endpoints: `POST /feedback` for users' ratings, `/metrics`, `/healthz`, `/readyz`, and `llmmonitor serve`.

FastAPI is the optional extra `api` (`pip install 'langchain-llmmonitor[api]'`): it is imported only when a router or
app is built, so `llmmonitor --help` and everything else work without it.

    app.include_router(feedback_router(recorder, tokens=FeedbackTokens(secret), require_token=True))

`POST /feedback` takes JSON: exactly one of `run_id` (the LangChain / LangSmith run id) or `request_id` (the
application's own id), `rating` (a number on the recorder's scale), and optionally `comment`, `source` (e.g. "web"),
`feedback_id` (a UUID that makes a retry idempotent) and `token`. Answers:
- 201 {"id", "run_id", "trace_id", "rating" (the label, e.g. "negative"), "score"}; a retry with the same
  `feedback_id` gets the same answer, and nothing is stored or counted twice.
- 422 a malformed body, or a rating, comment or source the recorder refuses (the detail says what is allowed).
- 403 a missing (when required), forged, other run's, or expired token; the detail says which.
- 404 no run with that id (yet). 409 a `feedback_id` reused for a different rating.
- 503 the store is unreachable: nothing was stored, retry with the same `feedback_id`.

Tokens (`feedback.FeedbackTokens`): issue one per answer for the id you hand the client (the run id or your
request id) and the client posts that id with it. A token issued for the run id is also accepted when the client
posts the run's request id. A bad token is a 403 whether or not the id exists, so without a valid token a client
learns nothing about which ids exist.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.errors import FeedbackConflictError, InvalidFeedbackError, UnknownRunError
from ..core.text import describe_error
from .tokens import ExpiredFeedbackToken, FeedbackTokens, InvalidFeedbackToken, bound_id

# Imported where used: importing this module (as `llmmonitor --help` does) must need neither FastAPI nor SQLAlchemy.
if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from ..core.records import RunRef
    from ..langsmith import Forwarder
    from ..storage.store import Store
    from .recorder import FeedbackRecorder

INSTALL_HINT = "pip install 'langchain-llmmonitor[api]'"
_MAX_ID_CHARS = 200


def _fastapi() -> Any:
    try:
        import fastapi
    except ImportError as error:
        raise ImportError(f"the feedback API needs FastAPI: {INSTALL_HINT}") from error
    return fastapi


# Bodies ---------------------------------------------------------------------------------------------------------------


class FeedbackIn(BaseModel):
    """A user's rating of one run, named by exactly one of `run_id` or `request_id`."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(None, min_length=1, max_length=_MAX_ID_CHARS)
    request_id: str | None = Field(None, min_length=1, max_length=_MAX_ID_CHARS)
    rating: float = Field(strict=True, description="a number on the server's scale (thumbs: -1 or 1; five: 1 to 5)")
    comment: str | None = None  # its length is checked by the recorder, whose limit is configurable
    source: str = Field("api", min_length=1, max_length=50)
    feedback_id: UUID | None = None
    token: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one_id(self) -> "FeedbackIn":
        if (self.run_id is None) == (self.request_id is None):
            raise ValueError("give exactly one of run_id or request_id")
        return self

    @property
    def identifier(self) -> str:
        return self.run_id if self.run_id is not None else self.request_id  # type: ignore[return-value]


class FeedbackOut(BaseModel):
    id: str
    run_id: str
    trace_id: str
    rating: str
    score: float


# The router -----------------------------------------------------------------------------------------------------------


def feedback_router(
    recorder: "FeedbackRecorder", *, tokens: FeedbackTokens | None = None, require_token: bool = False
) -> "APIRouter":
    """`POST /feedback` on `recorder`. With `tokens`, a token that is present must be valid; `require_token` also
    refuses ratings without one."""
    fastapi = _fastapi()
    from sqlalchemy.exc import SQLAlchemyError

    if require_token and tokens is None:
        raise ValueError("require_token=True needs tokens=FeedbackTokens(secret)")
    router = fastapi.APIRouter()
    HTTPException = fastapi.HTTPException

    def authorize(body: FeedbackIn) -> "RunRef | None":
        """Check the token; returns the run when finding it was needed to check the token."""
        if tokens is None or (body.token is None and not require_token):
            return None
        if body.token is None:
            raise HTTPException(403, "a feedback token is required")
        try:
            tokens.verify(body.token, body.identifier)
            return None
        except ExpiredFeedbackToken as error:
            raise HTTPException(403, f"expired feedback token: {error}") from error
        except InvalidFeedbackToken as first:
            # Perhaps a token for the run id, posted with the run's request id.
            try:
                ref = recorder.resolve_run(body.identifier)
            except (UnknownRunError, InvalidFeedbackError):
                ref = None
            if ref is None or bound_id(ref.run_id) == bound_id(body.identifier):
                raise HTTPException(403, f"invalid feedback token: {first}") from first
            try:
                tokens.verify(body.token, ref.run_id)
            except ExpiredFeedbackToken as error:
                raise HTTPException(403, f"expired feedback token: {error}") from error
            except InvalidFeedbackToken as error:
                raise HTTPException(403, f"invalid feedback token: {error}") from error
            return ref

    @router.post(
        "/feedback",
        status_code=201,
        response_model=FeedbackOut,
        responses={403: {"description": "token missing, invalid or expired"}, 404: {"description": "unknown run"}},
    )
    def post_feedback(body: FeedbackIn) -> FeedbackOut:
        """Record a user's rating of a run (stored, counted, and forwarded to LangSmith from the outbox)."""
        try:
            ref = authorize(body)
            record = recorder.record(
                ref if ref is not None else body.identifier,
                score=body.rating,
                comment=body.comment,
                source=body.source,
                feedback_id=body.feedback_id,
            )
        except FeedbackConflictError as error:
            raise HTTPException(409, str(error)) from error
        except InvalidFeedbackError as error:
            raise HTTPException(422, str(error)) from error
        except UnknownRunError as error:
            raise HTTPException(404, str(error)) from error
        except SQLAlchemyError as error:
            recorder.logger.error("user_feedback_store_unavailable", error=describe_error(error))
            raise HTTPException(503, "the feedback store is unavailable; retry with the same feedback_id") from error
        return FeedbackOut(
            id=record.id, run_id=record.run_id, trace_id=record.trace_id, rating=record.rating, score=record.score
        )

    return router


# The app --------------------------------------------------------------------------------------------------------------


class _AsgiEndpoint:
    """An ASGI app as a route endpoint: Starlette calls a plain function endpoint with a Request, but passes an
    object's `__call__` the raw (scope, receive, send), and `Route` serves `/metrics` itself (a mount would redirect
    it to `/metrics/`)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def create_app(
    *,
    recorder: "FeedbackRecorder",
    registry: CollectorRegistry,
    tokens: FeedbackTokens | None = None,
    require_token: bool = False,
    forwarder: "Forwarder | None" = None,
    store: "Store | None" = None,
) -> "FastAPI":
    """A FastAPI app with `POST /feedback`, `GET /metrics`, `GET /healthz` and `GET /readyz`.

    Args:
        recorder: records the ratings.
        registry: the metrics to serve (in multiprocess mode, every process's, see `exposition`).
        tokens, require_token: as for `feedback_router`.
        forwarder: started with the app and stopped with it; its items stay in the store if it is stopped early.
        store: checked by `/readyz`; the recorder's store by default.
    """
    fastapi = _fastapi()
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    from ..ops.exposition import metrics_app

    store = store if store is not None else recorder.store

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        if forwarder is not None:
            forwarder.start()
        try:
            yield
        finally:
            if forwarder is not None:
                await run_in_threadpool(forwarder.close)  # joins its thread: not on the event loop

    app = fastapi.FastAPI(title="langchain-llmmonitor", lifespan=lifespan)
    app.state.recorder, app.state.store, app.state.forwarder = recorder, store, forwarder
    app.include_router(feedback_router(recorder, tokens=tokens, require_token=require_token))
    app.add_route("/metrics", _AsgiEndpoint(metrics_app(registry)), methods=["GET"], include_in_schema=False)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        """Readiness: the store answers; with the outbox's pending and parked (dead) counts."""
        try:
            pending, dead = store.pending_count(), store.dead_count()
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            return JSONResponse(
                {"status": "unavailable", "error": f"store unreachable: {type(error).__name__}"}, status_code=503
            )
        return {"status": "ready", "outbox": {"pending": pending, "dead": dead}, "forwarding": forwarder is not None}

    return app
