"""The Monday email: the week's summary in the body, the quality report attached."""

from __future__ import annotations

from expectations import report
from expectations.weekly_summary import summarize_week
from orchestration.notifications import send_email
from orchestration.task_warehouse import task_warehouse


def send_weekly_report() -> dict[str, str]:
    warehouse = task_warehouse()
    docs = report.build_data_docs()
    page = report.build_report(warehouse)
    summary = summarize_week(warehouse)
    subject = f"Weekly report {summary.since:%Y-%m-%d} to {summary.until:%Y-%m-%d}"
    if not send_email(subject, summary.render(), attachments=[page]):
        raise RuntimeError(f"{subject}: the email could not be sent (see SMTP_* in .env)")
    return {"report": str(page), "data_docs": str(docs), "subject": subject}
