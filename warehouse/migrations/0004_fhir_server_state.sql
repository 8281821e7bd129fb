-- 0004 What each FHIR pull saw of its server: how many resources of the type it holds (when the
-- server says) and its newest `meta.lastUpdated`. The next pull's warning compares with them
-- (ingestion/api_landing.py): a server that now holds fewer than at its last pull, or whose
-- newest is older than the cursor and not what it was, has changed.
alter table audit.api_pulls add column server_total integer;
alter table audit.api_pulls add column server_newest text;
