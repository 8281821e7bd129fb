"""FHIR pull speed: resources per second pulled from the local FHIR server into a throwaway
warehouse, with and without injected 429s, and the requests made per resource landed.

    python benchmarks/fhir_pull.py                 # 500 patients (about 5,600 resources)
    python benchmarks/fhir_pull.py --patients 20   # what the tests run

After a small warm-up pull, both runs pull the same resources through the project's loader (OAuth2, paging, validation
against the R4B models, merge into raw_fhir.resources). The faulty server answers every fifth
request with 429 (Retry-After: 0). Progress goes to stderr; the last line of stdout is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, Faults, FhirStore
from ingestion.api_landing import land_fhir
from ingestion.http_client import RetryPolicy
from warehouse.throwaway import throwaway_warehouse

CLIENT_ID, CLIENT_SECRET = "benchmark", "benchmark-secret"


def progress(message: str) -> None:
    print(f"[fhir bench] {message}", file=sys.stderr, flush=True)


def pull(resources: list[dict], faults: Faults, page_size: int) -> dict:
    server = DemoFhirServer(FhirStore(resources), CLIENT_ID, CLIENT_SECRET, faults, page_size)
    base_url = server.start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="fhir_bench_") as tmp,
            throwaway_warehouse(Path(tmp) / "var") as warehouse,
        ):
            started = time.perf_counter()
            pulls = land_fhir(
                warehouse,
                "bench",
                base_url,
                CLIENT_ID,
                CLIENT_SECRET,
                page_size=page_size,
                policy=RetryPolicy(base_delay=0.01, max_delay=0.1),
            )
            seconds = time.perf_counter() - started
    finally:
        server.stop()
    landed = sum(len(p.landed) for p in pulls.values())
    requests = server.state.requests
    return {
        "seconds": round(seconds, 3),
        "resources_landed": landed,
        "resources_per_second": round(landed / seconds),
        "requests": requests,
        "requests_per_resource": round(requests / landed, 4),
        "answered": {str(status): n for status, n in sorted(server.state.answered.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    resources = demo_resources(patients=args.patients)
    progress(f"{len(resources)} resources, pages of {args.page_size}")
    pull(demo_resources(patients=2), Faults(), args.page_size)  # warm up: imports, dlt, models
    clean = pull(resources, Faults(), args.page_size)
    progress(f"no faults: {clean['resources_per_second']} resources/s")
    faulty = pull(resources, Faults(too_many_requests_every=5), args.page_size)
    progress(f"every fifth request 429: {faulty['resources_per_second']} resources/s")
    print(
        json.dumps(
            {
                "benchmark": "fhir_pull",
                "resources": len(resources),
                "without_faults": clean,
                "with_429_every_5th": faulty,
                "throughput_kept_under_429s": round(
                    faulty["resources_per_second"] / clean["resources_per_second"], 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
