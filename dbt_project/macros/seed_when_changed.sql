{#-
    Seeds load only when their file changed. dbt reloads every seed on every build; the ICD-10-CM
    code set is 98,000 rows (about 3 s: load_csv_rows.sql), and it changes once a year. Each loaded seed table keeps
    its file's checksum in its comment (post-hook in dbt_project.yml); when the file's checksum is
    the same, the table is left as it is. `dbt seed --full-refresh` reloads regardless.
-#}
{% materialization seed, adapter='postgres' %}
    {%- set existing = adapter.get_relation(database=database, schema=schema, identifier=model['alias']) -%}
    {%- set wanted = 'seed checksum ' ~ seed_content_checksum(model) -%}
    {%- if existing is not none and existing.is_table and not should_full_refresh() -%}
        {%- set loaded = run_query(
            "select obj_description('" ~ existing ~ "'::regclass, 'pg_class')"
        ).columns[0].values()[0] -%}
        {%- if loaded == wanted -%}
            {%- do store_result('agate_table', response='OK', agate_table=run_query('select 1 where false')) -%}
            {%- call noop_statement('main', 'UNCHANGED', 'UNCHANGED', 0) -%}
                select 1
            {%- endcall -%}
            {{ return({'relations': [existing]}) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(materialization_seed_default()) }}
{% endmaterialization %}

{#- The checksum of a seed's content. dbt checksums a seed over 1 MiB by its path alone, so such a
    seed records its content's sha256 in config.meta.content_sha256 (seeds/_seeds.yml). -#}
{% macro seed_content_checksum(seed) %}
    {%- if seed['checksum']['name'] != 'path' -%}
        {{ return(seed['checksum']['checksum']) }}
    {%- endif -%}
    {%- set recorded = seed['config']['meta'].get('content_sha256') -%}
    {%- if not recorded and execute -%}
        {{ exceptions.raise_compiler_error(
            "seed " ~ seed['name'] ~ " is over 1 MiB, so dbt checksums its path: record its"
            ~ " content's sha256 in config.meta.content_sha256 (seeds/_seeds.yml)"
        ) }}
    {%- endif -%}
    {{ return(recorded) }}
{% endmacro %}
