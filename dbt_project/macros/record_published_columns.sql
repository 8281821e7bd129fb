{#-
    on-run-end of a build or run: the allow-list of what analysts may select of this build schema,
    in audit.published_columns. A relation is listed when its model says `meta: {published: true}`;
    its columns are the ones documented in its YAML (for a mart, its enforced contract), but an
    internal one (a leading `_`) or one marked `meta: {published: false}`. A column the SQL adds
    without documenting it is not published. warehouse/publish.py exposes these only. Whether it
    reads a source, however far up (else it holds code sets only, and the gate's PHI scan, which
    looks for the raw sources' identifiers, skips it). The names analysts select it by
    (docs/published_versions.md): a model's latest version by the model's name and, when
    versioned, `<name>_v<N>`; an older version kept for its deprecation window by `<name>_v<N>`.
-#}
{% macro record_published_columns() %}
    {%- if execute and flags.WHICH in ('build', 'run') -%}
        {%- set run_id = env_var('PIPELINE_RUN_ID', invocation_id) -%}
        {%- set build_schema = env_var('DBT_BUILD_SCHEMA', target.schema) -%}
        {#- the nodes that read a source, however far up: the rest hold code sets only -#}
        {%- set reads_sources = {} -%}
        {%- for round in range(50) -%}
            {%- for node in graph.nodes.values() if node.unique_id not in reads_sources -%}
                {%- for parent in node.depends_on.nodes
                    if parent.startswith('source.') or parent in reads_sources -%}
                    {%- do reads_sources.update({node.unique_id: true}) -%}
                {%- endfor -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- set listed = [] -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.meta.get('published') -%}
            {%- set columns = [] -%}
            {%- for column in node.columns.values()
                if not column.name.startswith('_')
                and column.config.meta.get('published', true)
                and column.meta.get('published', true) -%}
                {%- do columns.append("'" ~ column.name ~ "'") -%}
            {%- endfor -%}
            {#- its relation's name (generate_alias_name: the latest version's is the model's),
                and a versioned one's <name>_v<N> too -#}
            {%- set names = ["'" ~ node.alias ~ "'"] -%}
            {%- set versioned = node.name ~ "_v" ~ (node.version | replace('.', '_')) -%}
            {%- if node.version is not none and versioned != node.alias -%}
                {%- do names.append("'" ~ versioned ~ "'") -%}
            {%- endif -%}
            {%- do listed.append(
                "('" ~ build_schema ~ "', '" ~ node.alias ~ "', '" ~ node.unique_id ~ "', array["
                ~ names | join(', ') ~ "]::text[], array[" ~ columns | join(', ')
                ~ "]::text[], " ~ (node.unique_id in reads_sources) ~ ", '" ~ run_id ~ "')"
            ) -%}
        {%- endfor -%}
        delete from audit.published_columns where build_schema = '{{ build_schema }}';
        {% if listed %}
        insert into audit.published_columns
            (build_schema, relation, unique_id, published_as, columns, reads_sources, recorded_in)
        values {{ listed | join(',\n            ') }};
        {% endif %}
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}
