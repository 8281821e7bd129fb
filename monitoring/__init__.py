"""The vitals processor: device micro-batches landed, NEWS2-scored and turned into clinical alerts (docs/monitoring.md)."""
