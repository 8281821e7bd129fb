{#-
    The ledger's files whose rows the landed checkpoint has validated (expectations/landed.py):
    staging reads a file's rows only then, so that a file landed while a build runs waits for the
    next build's checks instead of reaching the marts unchecked, and rows the checks move to
    quarantine are never built.
-#}
{% macro validated_files() -%}
    select * from {{ source('landing', 'file_ledger') }}
    where status = 'loaded' and validation_state = 'validated'
{%- endmacro %}
