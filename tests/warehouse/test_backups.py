"""Backups that restore (warehouse/backup.py): a base backup of the whole server and the WAL
archived since, encrypted; each checked once taken, so that a flipped byte fails; nothing in them
readable without the key; the newest kept, with the WAL they need."""

from __future__ import annotations

import gzip
import os
import shutil
import threading
import time

import psycopg
import pytest
from psycopg import sql

from demo.ehr_extracts import write_extracts
from ingestion.file_source import land
from ingestion.sources.ehr_files import EHR_FILES
from warehouse import backup, embedded, wal_archive
from warehouse.backup_check import BackupInvalid
from warehouse.backup_crypto import BackupUnreadable, decrypted, identity
from warehouse.phi_scan import raw_identifiers

ARCHIVE_WAL = True  # as the product's own server (tests/conftest.py)


@pytest.fixture(scope="module")
def backed_up(test_warehouse):
    """Patients landed, then a base backup: (the backup's folder, the identifiers landed)."""
    write_extracts(test_warehouse.landing_dir / "ehr", files=1, rows=60, defects_per_file=0)
    [outcome] = land(EHR_FILES, test_warehouse.warehouse, "before_backup")
    assert outcome.rows_loaded == 60
    identifiers = {
        value for values in raw_identifiers(test_warehouse.warehouse).values() for value in values
    }
    assert len(identifiers) > 50
    return backup.back_up(test_warehouse.warehouse, keep=2), identifiers


def _readable(data: bytes, identifiers: set[str]) -> set[str]:
    return {value for value in identifiers if len(value) >= 6 and value.encode() in data}


def test_a_backup_is_checked_when_taken_and_records_what_it_holds(backed_up):
    taken, _ = backed_up
    assert sorted(path.name for path in taken.iterdir()) == [
        backup.RECORD, backup.BASE, backup.GLOBALS
    ]  # fmt: skip
    checked = backup.record(taken)["checked"]
    assert checked["files"] > 900 and checked["bytes"] > 10_000_000
    assert len(checked["start_segment"]) == 24 and checked["start_lsn"] <= checked["end_lsn"]
    assert oct(taken.stat().st_mode & 0o777) == "0o700"
    assert all(oct(path.stat().st_mode & 0o777) == "0o600" for path in taken.glob("*.age"))
    assert backup.verify(taken).files == checked["files"]


def test_backups_on_disk_are_encrypted_no_identifier_readable_in_them(test_warehouse, backed_up):
    taken, identifiers = backed_up
    wal_archive.archive_spooled(wal_archive.spool_dir(test_warehouse.var_dir / "pgdata"))
    stored = [
        path for path in test_warehouse.var_dir.joinpath("backups").rglob("*") if path.is_file()
    ]
    assert any(path.name.endswith(wal_archive.ARCHIVED) for path in stored)
    for path in stored:
        assert not _readable(path.read_bytes(), identifiers), f"{path.name} shows identifiers"
    # the check can find them: in the backup decrypted, they are there
    with decrypted(taken / backup.BASE, identity()) as stream:
        plain = gzip.decompress(stream.read())
    assert len(_readable(plain, identifiers)) > 20


@pytest.mark.parametrize("damaged", [backup.BASE, backup.GLOBALS])
def test_a_backup_with_one_flipped_byte_fails_verification(backed_up, tmp_path, damaged):
    taken, _ = backed_up
    copy = shutil.copytree(taken, tmp_path / taken.name)
    path = copy / damaged
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    # found without the key (the nightly check), and by decryption (a restore, verify-backup)
    with pytest.raises(BackupInvalid, match=f"{damaged} changed since it was written"):
        backup.check_stored(copy)
    with pytest.raises(BackupInvalid):
        backup.verify(copy)
    with pytest.raises(BackupUnreadable, match="decryption"), decrypted(path, identity()) as plain:
        plain.read()
    backup.check_stored(taken)  # the original is good
    backup.verify(taken)


def test_a_backup_missing_a_file_fails_its_check(test_warehouse, backed_up, tmp_path):
    """What the encryption cannot catch, a backup wrong when it was taken, the check does."""
    import io
    import tarfile

    from warehouse.backup_check import check_base_backup

    taken, _ = backed_up
    with decrypted(taken / backup.BASE, identity()) as stream:
        plain = gzip.decompress(stream.read())
    short = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(plain)) as full,
        tarfile.open(fileobj=short, mode="w:gz") as out,
    ):
        for member in full:
            if member.name != "global/pg_control":
                out.addfile(member, full.extractfile(member) if member.isfile() else None)
    short.seek(0)
    (tmp_path / "wal").mkdir()
    with pytest.raises(BackupInvalid, match="global/pg_control is missing"):
        check_base_backup(short, tmp_path / "wal", backup.CLIENT_BIN / "pg_waldump")


@pytest.mark.last_in_module  # it deletes the backup the others read
def test_the_newest_backups_are_kept_with_only_the_wal_they_need(test_warehouse, backed_up):
    first, _ = backed_up
    spool = wal_archive.spool_dir(test_warehouse.var_dir / "pgdata")
    wal_archive.archive_spooled(spool)
    before = {path.name.split(".")[0] for path in wal_archive.archived_files()}

    second = backup.back_up(test_warehouse.warehouse, keep=1)

    assert backup.backups() == [second] and not first.exists()
    needed = wal_archive.segment_position(backup.record(second)["checked"]["start_segment"])
    assert any(wal_archive.segment_position(name) < needed for name in before)
    until = time.monotonic() + 30  # the server archives the backup's last segment on its own
    while time.monotonic() < until:
        wal_archive.archive_spooled(spool)
        archived = {path.name.split(".")[0] for path in wal_archive.archived_files()}
        if archived - before:
            break
        time.sleep(0.2)
    assert archived - before, "the segments the new backup ends in are archived"
    assert all(wal_archive.segment_position(name) >= needed for name in archived), (
        needed,
        sorted(archived),
        sorted(before),
    )


def test_a_client_takes_its_password_from_an_owner_only_file_that_is_gone_after(test_warehouse):
    """Not from its environment, which pg_dumpall's own `sh -c "pg_dump" -V` inherits; a ':' and
    a backslash in the password are escaped as libpq reads them."""
    warehouse = test_warehouse.warehouse
    role, password = "pgpass_probe", "a:b\\c:\\:d"
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login password {}").format(
            sql.Identifier(role), sql.Literal(password)
        ))  # fmt: skip
        conn.execute(sql.SQL("grant connect on database {} to {}").format(
            sql.Identifier(warehouse.database), sql.Identifier(role)
        ))  # fmt: skip
    try:
        with backup.password_file(role, password) as passwords:
            assert oct(passwords.stat().st_mode & 0o777) == "0o600"
            assert oct(passwords.parent.stat().st_mode & 0o777) == "0o700"
            psycopg.connect(
                host=warehouse.host, port=warehouse.port, dbname=warehouse.database, user=role,
                passfile=str(passwords), require_auth="scram-sha-256", connect_timeout=10,
            ).close()  # fmt: skip
        assert not passwords.parent.exists()
    finally:
        with psycopg.connect(
            **warehouse.connect_kwargs(warehouse.admin_user), autocommit=True
        ) as conn:
            conn.execute(sql.SQL("revoke connect on database {} from {}").format(
                sql.Identifier(warehouse.database), sql.Identifier(role)
            ))  # fmt: skip
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_a_backup_file_that_cannot_be_opened_fails_at_once(tmp_path):
    """Not a reader left waiting on a decryption that never began."""
    outcome: list[BaseException] = []

    def read_missing() -> None:
        try:
            with decrypted(tmp_path / "missing.age", identity()) as plain:
                plain.read()
        except BackupUnreadable as error:
            outcome.append(error)

    reader = threading.Thread(target=read_missing, daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "the reader waits on a decryption that failed"
    assert "missing.age" in str(outcome[0])


def test_a_file_the_server_cannot_read_fails_the_backup_saying_so_and_a_start_mends_it(
    test_warehouse, backed_up
):
    """pgserver writes its own record into the data folder as root, 0600 under the product's
    umask: a base backup reads every file there, as the server's user (warehouse/embedded.py)."""
    pgdata = test_warehouse.var_dir / "pgdata"
    record = pgdata / embedded.PGSERVER_RECORD
    record.write_text("[]")
    os.chown(record, 0, 0)
    record.chmod(0o600)
    with pytest.raises(RuntimeError, match="(?s)pg_basebackup failed .*Permission denied"):
        backup.back_up(test_warehouse.warehouse, keep=3)
    warehouse = test_warehouse.warehouse
    embedded.ensure_running(pgdata, warehouse.port, warehouse.admin_password, archive_wal=True)
    assert backup.record(backup.back_up(warehouse, keep=3))["checked"]["files"] > 900
