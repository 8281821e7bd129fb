"""Build only what changed: each build schema remembers dbt's state of its last complete build.

Blue and green each hold a complete build. A new build of one of them need not rebuild what has
not changed since that schema's own last complete build, and dbt can say what that is:

    dbt source freshness      how fresh each source is now (its loaded_at_query: a ledger's max)
    dbt ls --state <last>     source_status:fresher+   what reads a source that landed since
                              state:modified+          what changed: code, config, seeds, macros
                              <as-of models>+          what reckons on the build's day, on a new day

The whole project is built when the schema has no complete build on record, or when something
dbt does not compare has changed since: dbt's version, dbt_project.yml (its vars), the command's
own arguments (`--vars`). A plan is recorded as `planned` with the artifacts it was made from; once
every node of it built, `record_built` makes them the schema's `built` state. A build that fails
leaves the last complete state in place, so the next plan takes in everything changed since.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from common import settings
from warehouse.connection import Warehouse
from warehouse.dbt_runner import invoke_dbt
from warehouse.publish import BUILD_SCHEMAS, published_schema

log = logging.getLogger(__name__)

# Models that read the build's day (ages are reckoned on it when var deid_as_of is not set).
AS_OF_MACRO = "macro.healthcare_warehouse.deid_as_of"
CHANGED_SINCE = ("source_status:fresher+", "state:modified+")
# what the plan lists: what dbt builds, and the tests, which can change without their model
LISTED_RESOURCES = ("model", "seed", "snapshot", "test", "unit_test")
EVERY_NODE = "fqn:*"


class PlanFailed(Exception):
    """dbt could not say what changed (its output names why)."""


@dataclass(frozen=True)
class BuildPlan:
    build_schema: str
    run_id: str
    # names of the models, seeds, snapshots and tests to build (a model's tests come with it)
    nodes: tuple[str, ...] | None  # None: the whole project
    unique_ids: frozenset[str]
    reason: str

    @property
    def builds_everything(self) -> bool:
        return self.nodes is None

    @property
    def builds_nothing(self) -> bool:
        return self.nodes == ()

    def select_args(self) -> list[str]:
        """`dbt build` arguments that build this plan's nodes (none: the whole project)."""
        return [] if self.nodes is None else ["--select", *self.nodes]

    @property
    def selection(self) -> str:
        """This plan's nodes as one `--select` value (`fqn:*`, every node, for the whole project)."""
        return EVERY_NODE if self.nodes is None else " ".join(self.nodes)

    def includes(self, unique_id: str, depends_on: Iterable[str] = ()) -> bool:
        """Whether a node is built: a node of the plan, or a test of one."""
        if self.nodes is None or unique_id in self.unique_ids:
            return True
        return unique_id.startswith(("test.", "unit_test.")) and any(
            parent in self.unique_ids for parent in depends_on
        )

    def as_dict(self) -> dict:
        return {
            "build_schema": self.build_schema,
            "run_id": self.run_id,
            "nodes": None if self.nodes is None else list(self.nodes),
            "unique_ids": sorted(self.unique_ids),
            "reason": self.reason,
            "selection": self.selection,
        }

    @classmethod
    def from_dict(cls, plan: Mapping) -> BuildPlan:
        return cls(
            build_schema=plan["build_schema"],
            run_id=plan["run_id"],
            nodes=None if plan["nodes"] is None else tuple(plan["nodes"]),
            unique_ids=frozenset(plan["unique_ids"]),
            reason=plan["reason"],
        )


def _fingerprint(manifest: dict, dbt_args: list[str]) -> str:
    """What dbt's state comparison does not see: its version, the project file, the arguments."""
    digest = hashlib.sha256()
    digest.update(manifest["metadata"]["dbt_version"].encode())
    digest.update((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_bytes())
    digest.update(json.dumps(dbt_args).encode())
    return digest.hexdigest()


def _as_of_models(manifest: dict) -> list[str]:
    """Models whose SQL reaches the as-of macro, directly or through other macros."""
    macros = manifest["macros"]

    def reaches(macro_ids: Iterable[str], seen: set[str]) -> bool:
        for macro_id in macro_ids:
            if macro_id == AS_OF_MACRO:
                return True
            if macro_id not in seen and macro_id in macros:
                seen.add(macro_id)
                if reaches(macros[macro_id]["depends_on"]["macros"], seen):
                    return True
        return False

    return sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and reaches(node["depends_on"]["macros"], set())
    )


def _stored_state(conn: psycopg.Connection, build_schema: str) -> tuple | None:
    return conn.execute(
        """
        select fingerprint, built_on, manifest, sources from audit.build_states
        where build_schema = %s and stage = 'built'
        """,
        (build_schema,),
    ).fetchone()


@dataclass(frozen=True)
class _Measured:
    """What dbt says now: each source's freshness and the parsed project."""

    sources_text: str
    manifest_text: str
    fingerprint: str

    @property
    def manifest(self) -> dict:
        return json.loads(self.manifest_text)


def _measure(env: Mapping[str, str], dbt_args: list[str]) -> _Measured:
    target = Path(env.get("DBT_TARGET_PATH", settings.DBT_PROJECT_DIR / "target"))
    (target / "sources.json").unlink(missing_ok=True)
    # exit code 1 is a stale source: the freshness is measured all the same
    freshness = invoke_dbt(["source", "freshness", *dbt_args], env)
    if not (target / "sources.json").exists() or freshness.returncode > 1:
        raise PlanFailed(f"dbt source freshness failed:\n{freshness.stdout[-3000:]}")
    sources_text = (target / "sources.json").read_text()
    # a source dbt could not measure would count as unchanged: never plan on that
    unmeasured = [
        result["unique_id"]
        for result in json.loads(sources_text)["results"]
        if result["status"] == "runtime error"
    ]
    if unmeasured:
        raise PlanFailed(f"dbt could not measure the freshness of {', '.join(unmeasured)}")
    manifest_text = (target / "manifest.json").read_text()
    return _Measured(sources_text, manifest_text, _fingerprint(json.loads(manifest_text), dbt_args))


def _changed_nodes(
    env: Mapping[str, str], state: tuple, measured: _Measured, dbt_args: list[str], new_day: bool
) -> tuple[tuple[str, ...], frozenset[str]]:
    _, _, manifest_text, sources_text = state
    # `source_status:fresher+` reads the freshness measured now from dbt's target folder: the same
    # for every build schema, measured once
    target = Path(env.get("DBT_TARGET_PATH", settings.DBT_PROJECT_DIR / "target"))
    target.mkdir(parents=True, exist_ok=True)
    (target / "sources.json").write_text(measured.sources_text)
    manifest = measured.manifest
    selectors = list(CHANGED_SINCE)
    if new_day:
        selectors += [f"{name}+" for name in _as_of_models(manifest)]
    with tempfile.TemporaryDirectory(prefix="dbt_state_") as state_dir:
        Path(state_dir, "manifest.json").write_text(manifest_text)
        Path(state_dir, "sources.json").write_text(sources_text)
        listed = invoke_dbt(
            [
                "ls",
                "--no-write-json",  # the manifest the plan reads is the freshness run's
                *dbt_args,
                "--resource-type",
                *LISTED_RESOURCES,
                "--select",
                " ".join(selectors),
                "--state",
                state_dir,
                "--output",
                "json",
                "--output-keys",
                "unique_id",
                "name",
            ],
            env,
        )
    if listed.returncode != 0:
        raise PlanFailed(f"dbt ls could not compare with the last build:\n{listed.stdout[-3000:]}")
    nodes = [json.loads(line) for line in listed.result]
    return (
        tuple(sorted(node["name"] for node in nodes)),
        frozenset(node["unique_id"] for node in nodes),
    )


def _changes(
    conn: psycopg.Connection,
    build_schema: str,
    env: Mapping[str, str],
    measured: _Measured,
    dbt_args: list[str],
) -> tuple[tuple[str, ...] | None, frozenset[str], str]:
    """What changed since `build_schema`'s last complete build: (names or None for everything,
    unique ids, why)."""
    today = conn.execute("select current_date").fetchone()[0]
    state = _stored_state(conn, build_schema)
    if state is None:
        return None, frozenset(), f"{build_schema} has no complete build"
    if state[0] != measured.fingerprint:
        return None, frozenset(), "dbt's version, dbt_project.yml or the build's arguments changed"
    listed = conn.execute(
        "select 1 from audit.published_columns where build_schema = %s limit 1", (build_schema,)
    ).fetchone()
    if listed is None:  # built before migration 0006: a build records it (publish needs it)
        return None, frozenset(), f"{build_schema} has no allow-list of published relations"
    nodes, unique_ids = _changed_nodes(env, state, measured, dbt_args, state[1] != today)
    return nodes, unique_ids, f"what changed since {build_schema}'s last complete build"


def _record_planned(
    conn: psycopg.Connection, build_schema: str, run_id: str, measured: _Measured
) -> None:
    conn.execute(
        """
        insert into audit.build_states
            (build_schema, stage, run_id, fingerprint, built_on, manifest, sources)
        values (%s, 'planned', %s, %s, current_date, %s, %s)
        on conflict (build_schema, stage) do update set
            run_id = excluded.run_id, fingerprint = excluded.fingerprint,
            built_on = excluded.built_on, manifest = excluded.manifest,
            sources = excluded.sources, recorded_at = now()
        """,
        (build_schema, run_id, measured.fingerprint, measured.manifest_text, measured.sources_text),
    )


def _planned(
    conn: psycopg.Connection,
    build_schema: str,
    run_id: str,
    measured: _Measured,
    changes: tuple[tuple[str, ...] | None, frozenset[str], str],
) -> BuildPlan:
    _record_planned(conn, build_schema, run_id, measured)
    plan = BuildPlan(build_schema, run_id, *changes)
    log.info(
        "%s: %s (%s)",
        build_schema,
        "everything" if plan.builds_everything else f"{len(plan.nodes)} node(s)",
        plan.reason,
    )
    return plan


def plan_build(
    warehouse: Warehouse,
    build_schema: str,
    run_id: str,
    env: Mapping[str, str],
    dbt_args: list[str] | None = None,
    full: bool = False,
) -> BuildPlan:
    """What this build of `build_schema` must build; recorded as the schema's planned state.

    `env` is dbt's environment (connection, DBT_TARGET_PATH); `dbt_args` go to every dbt command
    of the build (such as --vars); `full` plans the whole project whatever changed.
    """
    dbt_args = list(dbt_args or [])
    measured = _measure(env, dbt_args)
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        if full:
            changes = (None, frozenset(), "a full build was asked for")
        else:
            changes = _changes(conn, build_schema, env, measured, dbt_args)
        return _planned(conn, build_schema, run_id, measured, changes)


def plan_next_build(
    warehouse: Warehouse,
    run_id: str,
    env_of: Callable[[str], Mapping[str, str]],
    dbt_args: list[str] | None = None,
) -> BuildPlan:
    """This run's build, in a build schema of its choosing (dbt's environment for it: `env_of`).

    The schema analysts do not read, built with what changed since its own last complete build;
    but when nothing changed since the published schema's complete build, that schema, with
    nothing to build: it already holds everything, and is gated and published again as it is.
    (Otherwise a run with nothing new would build the other schema from wherever it was left,
    all of it if it never had a complete build.)
    """
    dbt_args = list(dbt_args or [])
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        published = published_schema(conn)
        unpublished = BUILD_SCHEMAS[1] if published == BUILD_SCHEMAS[0] else BUILD_SCHEMAS[0]
        measured = _measure(env_of(unpublished), dbt_args)
        if published is not None:
            changes = _changes(conn, published, env_of(published), measured, dbt_args)
            if changes[0] == ():
                reason = f"nothing changed since the published build, {published}'s"
                return _planned(conn, published, run_id, measured, ((), frozenset(), reason))
        changes = _changes(conn, unpublished, env_of(unpublished), measured, dbt_args)
        return _planned(conn, unpublished, run_id, measured, changes)


def record_built(warehouse: Warehouse, build_schema: str, run_id: str) -> None:
    """Every node of run `run_id`'s plan built: its artifacts become the schema's state."""
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        planned = conn.execute(
            """
            select 1 from audit.build_states
            where build_schema = %s and stage = 'planned' and run_id = %s
            """,
            (build_schema, run_id),
        ).fetchone()
        if planned is None:
            raise ValueError(f"{build_schema}: run {run_id} planned no build to record")
        conn.execute(
            "delete from audit.build_states where build_schema = %s and stage = 'built'",
            (build_schema,),
        )
        conn.execute(
            """
            update audit.build_states set stage = 'built', recorded_at = now()
            where build_schema = %s and stage = 'planned'
            """,
            (build_schema,),
        )
