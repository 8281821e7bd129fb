-- 0023 Each landed file records the versions of the code sets its records were checked against
-- (ingestion/code_sets.py: ICD-10-CM's release for EHR encounters), so a check can be traced to
-- the release it used after the code set is updated (ICD-10-CM changes every April and October).
-- Files landed before this migration hold an empty object: their release is not known.
alter table audit.file_ledger add column if not exists code_sets jsonb not null default '{}';
comment on column audit.file_ledger.code_sets is
    'code set -> the version its records were checked against (ingestion/code_sets.py)';
