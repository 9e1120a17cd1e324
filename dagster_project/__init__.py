"""Dagster project: raw ingestion, dbt and the GE gate as assets; a schedule per connection."""
