"""Print, as JSON, the merged multiprocess samples the exposition endpoint would serve (after marking dead pids)."""

from __future__ import annotations

import json
import sys

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from langchain_llmmonitor.ops.exposition import exposition_registry, mark_worker_dead

for pid in sys.argv[1:]:
    mark_worker_dead(int(pid))
text = generate_latest(exposition_registry()).decode()
samples = {}
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        key = sample.name + json.dumps(sample.labels, sort_keys=True)
        samples[key] = sample.value
print(json.dumps(samples))
