{#- Tenant schemas (canonry/tenants.py): a dbt table rebuild drops the views that read the old table, so
    after every run the PostgreSQL warehouse's `ops.refresh_tenant_views()` (defined by `canonry tenant
    grant`) puts each granted tenant's canonical_<tenant> views back. DuckDB has no roles: nothing to do. -#}
{% macro canonry_tenant_views() %}
    {{ return(adapter.dispatch('canonry_tenant_views', 'canonry')()) }}
{% endmacro %}

{% macro default__canonry_tenant_views() %}
    select 1
{% endmacro %}

{% macro postgres__canonry_tenant_views() %}
    do $$ begin
        if to_regprocedure('ops.refresh_tenant_views()') is not null then
            perform ops.refresh_tenant_views();
        end if;
    end $$
{% endmacro %}
