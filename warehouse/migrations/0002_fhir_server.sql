-- 0002 FHIR servers side by side (ingestion/api_landing.py): every FHIR pull recorded in
-- audit.api_pulls names the server it pulled (its key: ingestion/sources/fhir_api.server_key),
-- and so does every raw FHIR resource. Other sources' pulls have no server.
--
-- Resources and pulls from before have none: the first configured server's pull names the
-- resources its own, with the cursors they were pulled to (docs/runbook.md, "FHIR servers").
-- The raw column is added here (null until then), so a build that runs before that pull finds
-- it; dlt made the table and keeps its own record of its columns.
alter table audit.api_pulls add column server text;

do $$
begin
    if to_regclass('raw_fhir.resources') is not null then
        alter table raw_fhir.resources add column if not exists server text;
    end if;
end
$$;
