"""`make docs`: generate dbt's docs site for the warehouse and serve it on localhost.

    hcw docs                 # http://127.0.0.1:8081, Ctrl-C to stop
    hcw docs --port 9000

The catalog describes the published build (build_blue or build_green, whichever analysts read);
the lineage graph runs from every raw source to every mart. Generated into var/dbt_docs.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

from common import settings
from warehouse.bootstrap import bootstrap
from warehouse.connection import Warehouse, dbt_environment
from warehouse.dbt_runner import run_dbt
from warehouse.publish import BUILD_SCHEMAS, published_schema

log = logging.getLogger(__name__)

DEFAULT_PORT = 8081


def generate(warehouse: Warehouse, folder: Path) -> Path:
    """Run `dbt docs generate` into `folder` (index.html, manifest.json, catalog.json)."""
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        build_schema = published_schema(conn) or BUILD_SCHEMAS[0]
    env = {
        **os.environ,
        **dbt_environment(warehouse),
        "DBT_BUILD_SCHEMA": build_schema,
        "DBT_TARGET_PATH": str(folder),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    result = run_dbt(["docs", "generate"], env)
    if result.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed:\n{result.stdout[-3000:]}")
    log.info("docs generated into %s (catalog of %s)", folder, build_schema)
    return folder


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)


def serve(folder: Path, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """Serve `folder` on 127.0.0.1:`port` from a background thread; `.shutdown()` stops it."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name="docs-site", daemon=True).start()
    return server


def serve_docs(warehouse: Warehouse, port: int = DEFAULT_PORT) -> None:
    """Generate the site into var/dbt_docs and serve it on 127.0.0.1:`port` until Ctrl-C."""
    bootstrap(warehouse)
    folder = generate(warehouse, settings.VAR_DIR / "dbt_docs")
    server = serve(folder, port)
    log.info("dbt docs on http://127.0.0.1:%d (Ctrl-C to stop)", port)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
