"""The vitals processor's own secrets: a file of only the variables it uses, owner-only, which the
processor reads as its `.env` (HEALTHCARE_ENV_FILE). Its environment, and so /proc/<pid>/environ,
holds none; it never sees the administrator's password nor another role's.

`make up` writes it before supervisord starts the processor and deletes it on `make down`;
`make run` writes it for the processor's one pass and deletes it after.
"""

from __future__ import annotations

from common import settings
from common.whole_files import written_whole

# what the processor uses: landing micro-batches (loader), scoring and its heartbeat (monitor),
# the clinical alerts' channels (a webhook's URL may carry a token; the SMTP password)
VITALS_PROCESSOR_SECRETS = (
    "WAREHOUSE_MONITOR_PASSWORD",
    "WAREHOUSE_LOADER_PASSWORD",
    "CLINICAL_ALERT_WEBHOOK_URL",
    "SMTP_PASSWORD",
)


def vitals_processor_secrets_file():
    return settings.VAR_DIR / "secrets" / "vitals-processor.env"


def write_vitals_processor_secrets() -> dict[str, str]:
    """Write the processor's file (0600 in a 0700 folder, written whole under another name and
    renamed); the variables to add to its environment: the file's path, and Airflow's store
    turned off (the processor is no task)."""
    settings.load_env()
    values = {name: value for name in VITALS_PROCESSOR_SECRETS if (value := settings.secret(name))}
    path = vitals_processor_secrets_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    with written_whole(path, owner_only=True) as file:
        file.write("# The vitals processor's secrets, written by hcw at each start\n")
        file.writelines(f"{name}={_quoted(name, value)}\n" for name, value in values.items())
    return {"HEALTHCARE_ENV_FILE": str(path), settings.SECRETS_FROM_AIRFLOW: ""}


def remove_vitals_processor_secrets() -> None:
    vitals_processor_secrets_file().unlink(missing_ok=True)


def _quoted(name: str, value: str) -> str:
    """`value` as python-dotenv reads it back unchanged, which it cannot be when the value holds
    a quote, a line break, `$` (expanded) or a backslash (taken as an escape)."""
    if any(character in value for character in "'\n$\\"):
        raise SystemExit(f"{name} holds a quote, a line break, '$' or '\\': set another value")
    return f"'{value}'"
