-- 0003 What a FHIR pull found wrong with its server (ingestion/api_landing.py): it holds fewer
-- resources of a type than were landed from it, or none as new as the cursor: a changed or
-- restored server behind the same address. Shown by the run's summary and the quality report.
alter table audit.api_pulls add column warning text;
