{# Schemas are the contract's names exactly (staging, canonical, reverse_etl), not <target>_<custom>.
   A shadow build (canonry shadow, canonry/rollout/shadow.py) sets the var `canonry_schema_suffix`
   ('__shadow'): the same models land beside the live ones (canonical__shadow, ...), reading the same raw. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name | trim if custom_schema_name is not none else target.schema) ~ var('canonry_schema_suffix', '') }}
{%- endmacro %}
