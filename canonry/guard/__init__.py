"""Query guardrails: SOQL dialect and rules, warehouse SQL rules, rewrites, guarded AI generation.

Public entry points (import from the modules; this package stays import-light for the CLI):

* ``rules_soql.check_soql(query, catalog=None, policy=None) -> Verdict``
* ``rules_sql.check_sql(query, dialect="duckdb", tables=None, policy=None) -> Verdict``
* ``soql_dialect.parse_soql`` / ``to_soql`` (sqlglot dialect ``soql``), ``catalog.Catalog``
* ``ai.ask`` (guarded generation loop), ``run.run_query`` (sandboxed, time-limited execution)
* ``cli.soql_app`` / ``cli.sql_app`` (``canonry soql|sql check|ask``, ``canonry sql run``)
"""
