"""A monitored FastAPI app for `uvicorn --workers N` (the store comes from LLMMONITOR_TEST_STORE):

- `POST /ask` answers a question through the demo chain (nothing sampled) and returns its run id;
- `POST /feedback` is the library's feedback router.

Every response names the worker process that served it (`X-Worker-Pid`), so a test can tell when a rating reached
another process than the answer.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request

from langchain_llmmonitor import Monitor
from langchain_llmmonitor.demo.app import build_chain
from langchain_llmmonitor.feedback import feedback_router
from langchain_llmmonitor.quality.judges import OfflineJudge

structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
monitor = Monitor(judge=OfflineJudge(), sample_rate=0.0, store=os.environ["LLMMONITOR_TEST_STORE"])
chain = build_chain()
app = FastAPI()
app.include_router(feedback_router(monitor.feedback_recorder))


@app.middleware("http")
async def name_the_worker(request: Request, call_next: Any) -> Any:
    response = await call_next(request)
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.post("/ask")
def ask() -> dict[str, str]:
    run_id = uuid.uuid4()
    chain.invoke("How long do I have to return an item?", config={"callbacks": [monitor], "run_id": run_id})
    return {"run_id": str(run_id)}
