{#-
    A published relation's versions (docs/published_versions.md): the latest keeps the model's own
    name, so analysts' queries of `fct_encounters` read the latest and break loudly when a column
    they use is gone; an older version kept for its deprecation window builds as `<name>_v<N>`.
-#}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- if custom_alias_name -%}
        {{ custom_alias_name | trim }}
    {%- elif node.version and node.version | string != node.latest_version | string -%}
        {{ node.name ~ "_v" ~ (node.version | replace(".", "_")) }}
    {%- else -%}
        {{ node.name }}
    {%- endif -%}
{%- endmacro %}
