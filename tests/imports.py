"""What the product's code imports, read from its source (ast): for the import-graph test and the
dependency test. Imports inside functions count: they run too."""

from __future__ import annotations

import ast
import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common import settings

ARCHITECTURE = settings.PROJECT_ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # absolute, dotted
    by_command: bool = False  # `-m module` in a command line (also pg_ctl's `-m fast`: ours only)

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


def imports_in(source: str, path: Path) -> Iterator[Import]:
    """Import statements, and the modules a command line runs with `-m` (`[python, "-m", "x"]`:
    a process started on another package's code depends on it as an import does)."""
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield Import(path, node.lineno, node.module)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for flag, module in itertools.pairwise(node.elts):
                if (
                    isinstance(flag, ast.Constant)
                    and flag.value == "-m"
                    and isinstance(module, ast.Constant)
                    and isinstance(module.value, str)
                ):
                    yield Import(path, node.lineno, module.value, by_command=True)


@dataclass(frozen=True)
class Package:
    name: str  # as imported (the DAG files, which are not imported, are `dags`)
    folder: str  # relative to the project root
    may_import: frozenset[str]


def packages_of_architecture(text: str | None = None) -> dict[str, Package]:
    """The table of packages and their allowed imports in docs/architecture.md, between the
    markers `<!-- packages -->` and `<!-- /packages -->`: | `name` | `folder/` | job | may import |."""
    text = ARCHITECTURE.read_text() if text is None else text
    table = text.split("<!-- packages -->", 1)[1].split("<!-- /packages -->", 1)[0]
    packages = {}
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        name, folder = cells[0].strip("`"), cells[1].strip("`").rstrip("/")
        allowed = frozenset(re.findall(r"`([a-z_]+)`", cells[3]))
        packages[name] = Package(name, folder, allowed)
    return packages


def product_files(packages: dict[str, Package]) -> Iterator[tuple[Package, Path]]:
    for package in packages.values():
        for path in sorted((settings.PROJECT_ROOT / package.folder).rglob("*.py")):
            yield package, path


def forbidden_imports(
    files: Iterator[tuple[Package, Path, str]], packages: dict[str, Package]
) -> list[str]:
    """Every import of one of `packages` by a package the table does not allow to import it, as
    `path:line: package imports other (allowed: ...)`."""
    ours = {p.name for p in packages.values()}
    found = []
    for package, path, source in files:
        for imported in imports_in(source, path):
            if imported.top not in ours or imported.top == package.name:
                continue
            if imported.top not in package.may_import:
                allowed = ", ".join(sorted(package.may_import)) or "none of ours"
                found.append(
                    f"{path.relative_to(settings.PROJECT_ROOT)}:{imported.line}: "
                    f"{package.name} imports {imported.module} (allowed: {allowed})"
                )
    return found


def third_party_imports(packages: dict[str, Package]) -> dict[str, set[str]]:
    """Top-level module -> the files that import it, for every module that is neither ours nor
    the standard library's."""
    ours = {p.name for p in packages.values()}
    found: dict[str, set[str]] = {}
    for package, path in product_files(packages):
        for imported in imports_in(path.read_text(), path):
            if imported.top in ours or imported.top in sys.stdlib_module_names:
                continue
            if imported.top == "__future__" or imported.by_command:
                continue
            relative = str(path.relative_to(settings.PROJECT_ROOT))
            found.setdefault(imported.top, set()).add(relative)
    return found
