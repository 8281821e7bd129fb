"""Dependencies declared as used: every third-party module the product imports comes from a direct
dependency in pyproject.toml (demo-only ones from the `demo` group), and every direct dependency
is imported, or is on the list below with the reason it is needed without an import."""

from __future__ import annotations

import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from common import settings
from tests.imports import imports_in, packages_of_architecture, third_party_imports

PYPROJECT = tomllib.loads((settings.PROJECT_ROOT / "pyproject.toml").read_text())
PACKAGES = packages_of_architecture()

# Needed, but never imported by the product's code: the reason each is a direct dependency.
USED_WITHOUT_IMPORT = {
    "dbt-postgres": "dbt's adapter for the warehouse (dbt_project/profiles.yml, type postgres)",
    "apache-airflow-providers-postgres": "registers the `postgres` connection type of the "
    "stored warehouse_* connections Cosmos' profile mapping and the tasks read",
    "adbc-driver-postgresql": "dlt loads Arrow tables through ADBC (ingestion/.dlt/config.toml)",
    "psycopg2-binary": "the driver of the `postgresql+psycopg2` URLs given to SQLAlchemy: "
    "Airflow's metadata database, Great Expectations' datasources, the research database",
    "sqlalchemy": "dlt's sql_database reads the research database with backend='sqlalchemy'",
    "supervisor": "make up runs the services under supervisord "
    "(airflow/include/orchestration/airflow_services.py)",
}

# A meta-package: its modules are shipped by the distributions it pins.
SHIPPED_BY = {"apache-airflow": {"apache-airflow-core", "apache-airflow-task-sdk"}}


def _name(requirement: str) -> str:
    """PEP 503's normalized name of a requirement string (`dlt[postgres]==1.31.0` -> `dlt`)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>~!; ]", requirement, 1)[0]).lower()


def _declared(*groups: str) -> set[str]:
    names = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for group in groups:
        names |= {_name(r) for r in PYPROJECT["dependency-groups"][group]}
    return names


@functools.cache
def _distributions_of_modules() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_name(d) for d in _distributions_of_modules().get(module, [])}


def _providers(declared: set[str]) -> set[str]:
    return declared | {d for name in declared for d in SHIPPED_BY.get(name, ())}


def _undeclared(modules: dict[str, set[str]], declared: set[str]) -> dict[str, list[str]]:
    providers = _providers(declared)
    return {
        module: sorted(files)
        for module, files in modules.items()
        if not _distributions(module) & providers
    }


def test_every_third_party_import_of_the_product_is_a_declared_direct_dependency():
    imports = third_party_imports(PACKAGES)
    product = {m: {f for f in files if not f.startswith("demo/")} for m, files in imports.items()}
    product = {m: files for m, files in product.items() if files}
    demo = {m: {f for f in files if f.startswith("demo/")} for m, files in imports.items()}
    demo = {m: files for m, files in demo.items() if files}
    assert _undeclared(product, _declared()) == {}
    assert _undeclared(demo, _declared("demo")) == {}
    # and the demo group serves the demo only
    assert not {m for m in product if _distributions(m) & _declared("demo") - _declared()}


def test_every_direct_dependency_is_imported_or_says_why_it_is_needed():
    imported = set()
    for module in third_party_imports(PACKAGES):
        imported |= _distributions(module)
    for meta, shipped in SHIPPED_BY.items():
        if shipped & imported:
            imported.add(meta)
    unexplained = _declared() - imported - set(USED_WITHOUT_IMPORT)
    assert unexplained == set()
    assert set(USED_WITHOUT_IMPORT) <= _declared()  # no reason kept for a dependency gone


def test_tests_and_benchmarks_import_only_what_some_group_declares():
    declared = _providers(_declared("demo", "dev"))
    ours = {p.name for p in PACKAGES.values()} | {"tests", "benchmarks"}
    missing = {}
    for folder in ("tests", "benchmarks"):
        for path in (settings.PROJECT_ROOT / folder).rglob("*.py"):
            # a script imports the scripts beside it (benchmarks/dag_run.py, gate.py's landing)
            beside = {sibling.stem for sibling in path.parent.glob("*.py")}
            for imported in imports_in(path.read_text(), path):
                if imported.top in ours | beside or imported.top in sys.stdlib_module_names:
                    continue
                if imported.by_command:
                    continue
                if imported.top != "__future__" and not _distributions(imported.top) & declared:
                    missing.setdefault(imported.top, []).append(str(path))
    assert missing == {}


def test_the_checker_finds_an_undeclared_import():
    assert _undeclared({"faker": {"ingestion/x.py"}}, _declared()) == {"faker": ["ingestion/x.py"]}
    assert _undeclared({"yaml": {"ingestion/x.py"}}, _declared() - {"pyyaml"}) == {
        "yaml": ["ingestion/x.py"]
    }
    assert _undeclared({"yaml": {"ingestion/x.py"}}, _declared()) == {}
