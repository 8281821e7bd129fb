-- 0007 Published relations have versions (docs/published_versions.md): each row of the allow-list
-- now says which dbt node made the relation (a versioned one: `model.<project>.<name>.v<N>`) and
-- the names analysts select it by (a latest version: its model's name and `<name>_v<N>`; an older
-- one kept for its deprecation window: `<name>_v<N>`). Publishing creates a view for each name and
-- drops the views of analytics no publication names any more (a withdrawn version).
alter table audit.published_columns add column unique_id text;
alter table audit.published_columns add column published_as text[];

-- rows recorded before: unversioned models, published under their own name
update audit.published_columns
set unique_id = 'model.healthcare_warehouse.' || relation, published_as = array[relation];

alter table audit.published_columns alter column unique_id set not null;
alter table audit.published_columns alter column published_as set not null;
