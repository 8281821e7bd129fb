-- 0009 Which list of published vocabularies each incremental table last withheld its earlier rows
-- against (dbt_project/macros/free_text.sql, `withhold_unlisted`): the post-hook scans a table's
-- rows only when seed published_vocabularies was loaded with other content since (its table's
-- comment, `seed checksum <sha>`, differs from the one recorded here), not on every build.
create table audit.withheld_vocabularies (
    relation text primary key,  -- schema.table
    vocabularies_loaded text not null,  -- the seed table's comment when the rows were withheld
    withheld_at timestamptz not null default now()
);

grant select, insert, update on audit.withheld_vocabularies to transformer;
