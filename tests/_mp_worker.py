"""A worker process for the multiprocess test: serves N requests, then holds one LLM call in flight until killed.

Usage: python -m tests._mp_worker N   (PROMETHEUS_MULTIPROC_DIR must be set before start)
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from langchain_llmmonitor import Monitor
from tests.conftest import fake_model


class HangingModel(GenericFakeChatModel):
    model_name: str = "gpt-4o-mini"

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        print("in-flight", flush=True)
        threading.Event().wait()  # until the process is killed


def main() -> None:
    monitor = Monitor()
    for _ in range(int(sys.argv[1])):
        fake_model().invoke("hello", config={"callbacks": [monitor]})
    HangingModel(messages=iter(())).invoke("hang", config={"callbacks": [monitor]})


if __name__ == "__main__":
    main()
