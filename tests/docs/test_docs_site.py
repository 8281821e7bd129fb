"""`make docs`' site in a real browser: Debian's Chromium, headless, driven by Playwright.

The warehouse is built on the EHR demo extracts; the docs are generated and served as `make docs`
does; the browser opens a mart's lineage graph and reads the nodes it shows.
"""

from __future__ import annotations

import json
import shutil

import pytest
from playwright.sync_api import sync_playwright

from cli import docs_site
from demo.ehr_extracts import write_extracts
from orchestration import pipeline
from warehouse.throwaway import free_port

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MART = "mart_readmissions_30d.v2"  # a versioned model's node: its latest version


@pytest.fixture(scope="module")
def site(test_warehouse):
    write_extracts(test_warehouse.landing_dir / "ehr", files=1, rows=60)
    pipeline.land_files("ehr", "run_docs", settle_seconds=0)
    pipeline.validate_landed_batches("run_docs")
    build = test_warehouse.dbt("build", build_schema="build_blue", run_id="run_docs")
    assert build.returncode == 0, build.stdout[-3000:]
    folder = docs_site.generate(test_warehouse.warehouse, test_warehouse.var_dir / "dbt_docs")
    server = docs_site.serve(folder, free_port())
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_lineage_graph_of_a_mart_reaches_its_raw_sources(site, tmp_path):
    _, url = site
    lineage = f"{url}/#!/model/model.healthcare_warehouse.{MART}?g_v=1&g_i=%2B{MART.split('.')[0]}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(lineage)
        page.wait_for_function(
            "() => window.angular && angular.element(document.body).injector()"
            ".get('graph').graph.elements.length > 10",
            timeout=60_000,
        )
        page.wait_for_timeout(1500)  # let the layout settle before the screenshot
        shown = page.evaluate(
            "() => angular.element(document.body).injector().get('graph').graph.elements"
            ".filter(e => e.group === 'nodes' || !e.data.source).map(e => e.data.id)"
        )
        page.screenshot(path=str(tmp_path / f"{MART}_lineage.png"), full_page=True)
        title = page.title()
        browser.close()
    assert (tmp_path / f"{MART}_lineage.png").stat().st_size > 10_000
    assert "dbt" in title.lower()
    assert f"model.healthcare_warehouse.{MART}" in shown
    assert "model.healthcare_warehouse.deid_encounters.v2" in shown
    assert "model.healthcare_warehouse.stg_ehr__encounters" in shown
    assert "source.healthcare_warehouse.ehr.encounters" in shown
    assert "source.healthcare_warehouse.ehr.patients" in shown
    assert not any("fct_claims" in node for node in shown)  # only the mart's ancestors


def test_every_built_column_is_described(site):
    folder, _ = site
    manifest = json.loads((folder / "manifest.json").read_text())
    catalog = json.loads((folder / "catalog.json").read_text())
    missing = []
    for unique_id, built in catalog["nodes"].items():
        node = manifest["nodes"][unique_id]
        if node["resource_type"] != "model":
            continue
        for column in built["columns"]:
            documented = node["columns"].get(column.lower())
            if not documented or not documented["description"].strip():
                missing.append(f"{node['name']}.{column}")
    assert len(catalog["nodes"]) > 30
    assert missing == []
