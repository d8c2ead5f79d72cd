"""HTTP endpoints: `POST /feedback` for users' ratings, `/metrics`, `/healthz`, `/readyz`, and `llmmonitor serve`.

FastAPI is the optional extra `api` (`pip install 'langchain-llmmonitor[api]'`): it is imported only when a router or
app is built, so `llmmonitor --help` and everything else work without it.

    app.include_router(feedback_router(recorder, tokens=FeedbackTokens(secret), require_token=True))

`POST /feedback` takes a JSON object: exactly one of `run_id` (the LangChain / LangSmith run id) or `request_id` (the
application's own id), `rating` (a number on the recorder's scale), and optionally `comment`, `source` (e.g. "web"),
`feedback_id` (a UUID that makes a retry idempotent; an `Idempotency-Key` header does the same) and `token`. Answers:
- 201 {"id", "run_id", "trace_id", "rating" (the label, e.g. "negative"), "score"}. A retry with the same
  `feedback_id` or `Idempotency-Key` gets the same answer, and nothing is stored or counted twice. A token rates its
  run once: the rating's id is derived from the token, so posting it again changes that rating instead of adding one.
- 413 a body over `FeedbackConfig.max_body_bytes` (64 KiB), refused before it is read.
- 422 a malformed body (not JSON, wrong types: a rating must be a JSON number, text must be a string), text that is
  not valid Unicode or holds control characters, or a rating, comment or source the recorder refuses. The detail
  says what is allowed, for at most a few fields, and never echoes the input.
- 403 a missing (when required), forged, other run's, or expired token; the detail says which.
- 404 no run with that id (yet). 409 a `feedback_id` or `Idempotency-Key` reused for a different rating.
- 429 the run already has `FeedbackConfig.max_ratings_per_run` ratings.
- 503 the store is unreachable: nothing was stored, retry with the same `feedback_id`.

Tokens (`feedback.FeedbackTokens`): issue one per answer for the id you hand the client (the run id or your
request id) and the client posts that id with it. A token issued for the run id is also accepted when the client
posts the run's request id. A bad token is a 403 whether or not the id exists, so without a valid token a client
learns nothing about which ids exist.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import FeedbackConflictError, FeedbackLimitError, InvalidFeedbackError, UnknownRunError
from ..core.text import describe_error
from ..core.untrusted import text_problem
from .tokens import ExpiredFeedbackToken, FeedbackTokens, InvalidFeedbackToken, bound_id, rating_id

# Imported where used: importing this module (as `llmmonitor --help` does) must need neither FastAPI nor SQLAlchemy.
if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from ..core.records import RunRef
    from ..langsmith import Forwarder
    from ..storage.store import Store
    from .recorder import FeedbackRecorder

INSTALL_HINT = "pip install 'langchain-llmmonitor[api]'"
_MAX_ID_CHARS = 200
_MAX_COMMENT_CHARS = 100_000  # the recorder's own limit is smaller and configurable; this only bounds the model
_MAX_ERRORS_SHOWN = 5
_IDEMPOTENCY = uuid.UUID("3d9b2f64-1c0e-4a57-8e2d-6b1f0a9c4e73")


def _fastapi() -> Any:
    try:
        import fastapi
    except ImportError as error:
        raise ImportError(f"the feedback API needs FastAPI: {INSTALL_HINT}") from error
    return fastapi


# Bodies ---------------------------------------------------------------------------------------------------------------


# What the model's validators enforce, also said in the OpenAPI schema (for client authors and schema fuzzers).
_LINE: dict[str, Any] = {"pattern": "^[^\\u0000-\\u001f\\u007f]*$"}
_LINES: dict[str, Any] = {"pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"}
_ONE_ID: dict[str, Any] = {
    "oneOf": [{"required": ["run_id"]}, {"required": ["request_id"]}],
    "not": {"required": ["token", "feedback_id"]},
}


class FeedbackIn(BaseModel):
    """A user's rating of one run, named by exactly one of `run_id` or `request_id`. Strict JSON types: a rating is a
    number, never a string or a boolean; text fields are strings of Unicode scalar values without control
    characters (a comment may hold line breaks and tabs)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_ONE_ID)

    run_id: str | None = Field(None, min_length=1, max_length=_MAX_ID_CHARS, json_schema_extra=_LINE)
    request_id: str | None = Field(None, min_length=1, max_length=_MAX_ID_CHARS, json_schema_extra=_LINE)
    rating: float = Field(description="a number on the server's scale (thumbs: -1 or 1; five: 1 to 5)")
    comment: str | None = Field(None, max_length=_MAX_COMMENT_CHARS, json_schema_extra=_LINES)  # the recorder's limit
    source: str = Field("api", min_length=1, max_length=50, json_schema_extra=_LINE)
    feedback_id: UUID | None = Field(None, strict=False)  # a UUID in a JSON string
    token: str | None = Field(None, max_length=200, json_schema_extra=_LINE)

    @field_validator("run_id", "request_id", "source", "token", "comment")
    @classmethod
    def _plain_text(cls, value: str | None, info: Any) -> str | None:
        name = info.field_name
        # lengths are the fields' own constraints (the comment's is the recorder's, which is configurable)
        problem = None if value is None else text_problem(name, value, max_chars=None, multiline=name == "comment")
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_id(self) -> "FeedbackIn":
        if (self.run_id is None) == (self.request_id is None):
            raise ValueError("give exactly one of run_id or request_id")
        if self.token is not None and self.feedback_id is not None:
            raise ValueError("a token already names its rating: send no feedback_id with it")
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


_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "token missing, invalid or expired"},
    404: {"description": "unknown run"},
    409: {"description": "feedback id or idempotency key reused for another rating"},
    413: {"description": "body too large"},
    422: {"description": "malformed body, or a rating, comment or source that is not allowed"},
    429: {"description": "the run has all the ratings it may get"},
}


def feedback_router(
    recorder: "FeedbackRecorder", *, tokens: FeedbackTokens | None = None, require_token: bool | None = None
) -> "APIRouter":
    """`POST /feedback` on `recorder`. With `tokens`, every rating needs a valid token for its run, unless
    `require_token=False` explicitly lets untokened (anonymous) ratings in beside tokened ones."""
    fastapi = _fastapi()
    from fastapi.concurrency import run_in_threadpool

    require_token = tokens is not None if require_token is None else require_token
    if require_token and tokens is None:
        raise ValueError("require_token=True needs tokens=FeedbackTokens(secret)")
    router = fastapi.APIRouter()
    ratings = _Ratings(recorder, tokens, require_token, fastapi.HTTPException)
    limit = recorder.max_body_bytes

    @router.post(
        "/feedback",
        status_code=201,
        response_model=FeedbackOut,
        responses=_RESPONSES,
        openapi_extra={"requestBody": _request_body_schema(recorder.scale.scores)},
    )
    async def post_feedback(request: fastapi.Request) -> FeedbackOut:
        """Record a user's rating of a run (stored, counted, and forwarded to LangSmith from the outbox)."""
        body = _parse(await _read_at_most(request, limit, fastapi.HTTPException), fastapi.HTTPException)
        idempotency_key = _idempotency_key(request.headers.get("idempotency-key"), fastapi.HTTPException)
        return await run_in_threadpool(ratings.record, body, idempotency_key)

    return router


class _Ratings:
    """What `POST /feedback` does with a parsed body, on a worker thread (the store is blocking I/O)."""

    def __init__(
        self, recorder: "FeedbackRecorder", tokens: FeedbackTokens | None, require_token: bool, http_error: Any
    ) -> None:
        self._recorder = recorder
        self._tokens = tokens
        self._require_token = require_token
        self._http_error = http_error

    def record(self, body: FeedbackIn, idempotency_key: str | None) -> FeedbackOut:
        from sqlalchemy.exc import SQLAlchemyError

        http_error = self._http_error
        try:
            ref = self._authorize(body)
            feedback_id = body.feedback_id
            if body.token is not None:  # a token rates its run once: its rating's id is derived from it
                feedback_id = UUID(rating_id(body.token))
            elif feedback_id is None and idempotency_key is not None:
                feedback_id = uuid.uuid5(_IDEMPOTENCY, idempotency_key)
            stored = self._recorder.record(
                ref if ref is not None else body.identifier,
                score=body.rating,
                comment=body.comment,
                source=body.source,
                feedback_id=feedback_id,
                replace_rating=body.token is not None,
            )
        except FeedbackConflictError as error:
            raise http_error(409, str(error)) from error
        except FeedbackLimitError as error:
            raise http_error(429, str(error)) from error
        except InvalidFeedbackError as error:
            raise http_error(422, str(error)) from error
        except UnknownRunError as error:
            raise http_error(404, str(error)) from error
        except SQLAlchemyError as error:
            self._recorder.logger.error("user_feedback_store_unavailable", error=describe_error(error))
            raise http_error(503, "the feedback store is unavailable; retry with the same feedback_id") from error
        return FeedbackOut(
            id=stored.id, run_id=stored.run_id, trace_id=stored.trace_id, rating=stored.rating, score=stored.score
        )

    def _authorize(self, body: FeedbackIn) -> "RunRef | None":
        """Check the token; returns the run when finding it was needed to check the token."""
        tokens, http_error = self._tokens, self._http_error
        if tokens is None and body.token is not None:
            raise http_error(403, "this server has no secret to check feedback tokens with; send the rating without")
        if tokens is None or (body.token is None and not self._require_token):
            return None
        if body.token is None:
            raise http_error(403, "a feedback token is required")
        try:
            tokens.verify(body.token, body.identifier)
            return None
        except ExpiredFeedbackToken as error:
            raise http_error(403, f"expired feedback token: {error}") from error
        except InvalidFeedbackToken as first:
            return self._verify_for_the_run(body, first)

    def _verify_for_the_run(self, body: FeedbackIn, first: InvalidFeedbackToken) -> "RunRef":
        """Perhaps a token for the run id, posted with the run's request id."""
        http_error = self._http_error
        try:
            ref = self._recorder.resolve_run(body.identifier)
        except (UnknownRunError, InvalidFeedbackError):
            ref = None
        if ref is None or bound_id(ref.run_id) == bound_id(body.identifier):
            raise http_error(403, f"invalid feedback token: {first}") from first
        try:
            self._tokens.verify(body.token, ref.run_id)  # type: ignore[union-attr]
        except ExpiredFeedbackToken as error:
            raise http_error(403, f"expired feedback token: {error}") from error
        except InvalidFeedbackToken as error:
            raise http_error(403, f"invalid feedback token: {error}") from error
        return ref


# Reading a body that may be hostile ----------------------------------------------------------------------------------


async def _read_at_most(request: Any, limit: int, http_error: Any) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit`: by its Content-Length before anything is
    read, else while it streams in. Nothing is buffered beyond the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise http_error(413, f"the body must be at most {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise http_error(413, f"the body must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes, http_error: Any) -> FeedbackIn:
    """Validate a JSON body; a refusal names at most a few fields and what is allowed, never the input itself."""
    try:
        return FeedbackIn.model_validate_json(raw)
    except ValidationError as error:
        problems = [
            {"loc": list(problem["loc"]), "msg": problem["msg"][:300], "type": problem["type"]}
            for problem in error.errors(include_url=False, include_input=False, include_context=False)[
                :_MAX_ERRORS_SHOWN
            ]
        ]
        raise http_error(422, {"errors": problems, "error_count": error.error_count()}) from None


def _idempotency_key(value: str | None, http_error: Any) -> str | None:
    if value is None:
        return None
    problem = text_problem("the Idempotency-Key header", value.strip(), max_chars=_MAX_ID_CHARS)
    if problem is not None or not value.strip():
        raise http_error(422, problem or "the Idempotency-Key header is empty")
    return value.strip()


def _request_body_schema(scores: Any) -> dict[str, Any]:
    """The OpenAPI request body of `POST /feedback` (the route reads the body itself, to bound it before parsing):
    the model's schema with this server's rating scale, and optional text fields as plain strings (null means absent,
    which the schema says by not requiring them)."""
    schema = FeedbackIn.model_json_schema()
    properties = schema["properties"]
    for field in properties.values():
        choices = field.pop("anyOf", None)
        if choices is not None:
            field.update(next(choice for choice in choices if choice.get("type") != "null"))
            field.pop("default", None)
    properties["rating"]["enum"] = sorted(scores)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# The app --------------------------------------------------------------------------------------------------------------


def create_app(
    *,
    recorder: "FeedbackRecorder",
    registry: CollectorRegistry,
    tokens: FeedbackTokens | None = None,
    require_token: bool | None = None,
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
    app.state.tokens_required = tokens is not None if require_token is None else require_token
    app.include_router(feedback_router(recorder, tokens=tokens, require_token=require_token))
    app.add_route("/metrics", metrics_app(registry), methods=["GET"], include_in_schema=False)

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
