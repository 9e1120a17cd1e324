"""Query guardrails: SOQL dialect and rules, warehouse SQL rules, rewrites, guarded AI generation.

Public entry points (import from the modules; this package stays import-light for the CLI):

* ``rules_soql.check_soql(query, catalog=None, policy=None) -> Verdict``
* ``rules_sql.check_sql(query, dialect="duckdb", tables=None, policy=None) -> Verdict``
* ``soql_dialect.parse_soql`` / ``to_soql`` (sqlglot dialect ``soql``; its nodes and vocabulary in
  ``soql_expressions``), ``soql_shape.parse_checked_soql`` (parse, then refuse what SOQL lacks), ``catalog.Catalog``
* ``canonical_tables`` (the canonical tables, columns and sizes the SQL rules check against; live when a
  DuckDB warehouse exists)
* ``rules_sql_cost`` (cost rules: recursion, row generators, value sizes, join fan-out, collecting aggregates)
* ``ai.ask`` (guarded generation loop; AI-written SOQL must be selective), ``run.run_query`` (sandboxed
  execution within memory, thread, time and result-size limits)
* ``cli.soql_app`` / ``cli.sql_app`` (``canonry soql|sql check|ask``, ``canonry sql run``; ``canonry soql run``
  joins the guard to a Salesforce connection through the app-layer ``canonry.soql``, imported lazily)
"""
