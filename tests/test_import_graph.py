"""Imports point one way: every package imports only what docs/architecture.md's table allows."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

import pytest

from common import settings
from tests.imports import Package, forbidden_imports, packages_of_architecture, product_files

PACKAGES = packages_of_architecture()


def test_every_package_imports_only_what_the_architecture_allows():
    files = ((package, path, path.read_text()) for package, path in product_files(PACKAGES))
    assert forbidden_imports(files, PACKAGES) == []


def test_the_checker_refuses_a_forbidden_import_also_inside_a_function():
    warehouse, monitoring = PACKAGES["warehouse"], PACKAGES["monitoring"]
    backup = settings.PROJECT_ROOT / "warehouse" / "backup.py"
    processor = settings.PROJECT_ROOT / "monitoring" / "processor.py"
    files = [
        (warehouse, backup, "from ingestion.file_source import land\n"),
        (monitoring, processor, "def f():\n    from orchestration import pipeline\n"),
        (monitoring, processor, "import demo.ward_vitals\n"),
        (warehouse, backup, "from warehouse.connection import Warehouse\nimport psycopg\n"),
        (monitoring, processor, 'command = [sys.executable, "-m", "cli", "processor"]\n'),
    ]
    found = forbidden_imports(iter(files), PACKAGES)
    monitoring_may = "(allowed: common, ingestion, warehouse)"
    assert found == [
        "warehouse/backup.py:1: warehouse imports ingestion.file_source (allowed: common)",
        f"monitoring/processor.py:2: monitoring imports orchestration {monitoring_may}",
        f"monitoring/processor.py:1: monitoring imports demo.ward_vitals {monitoring_may}",
        f"monitoring/processor.py:1: monitoring imports cli {monitoring_may}",
    ]


def test_the_allowed_imports_have_no_cycle_and_only_demo_s_caller_imports_demo():
    graph = {name: set(package.may_import) for name, package in PACKAGES.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        pytest.fail(f"docs/architecture.md allows a cycle: {cycle.args[1]}")
    assert order[0] == "common"
    assert [name for name, allowed in graph.items() if "demo" in allowed] == ["cli"]
    assert not any("cli" in allowed for allowed in graph.values())
    assert {"ingestion", "warehouse", "common"} >= PACKAGES["monitoring"].may_import


def test_every_python_package_of_the_project_is_in_the_architecture():
    listed = {package.folder for package in PACKAGES.values()}
    on_disk = {
        str(init.parent.relative_to(settings.PROJECT_ROOT))
        for init in settings.PROJECT_ROOT.glob("*/__init__.py")
    } | {
        str(init.parent.relative_to(settings.PROJECT_ROOT))
        for init in (settings.PROJECT_ROOT / "airflow" / "include").glob("*/__init__.py")
    }
    on_disk -= {"tests"}  # tests may import anything
    assert on_disk | {"airflow/dags"} == listed
    assert all(isinstance(package, Package) for package in PACKAGES.values())
