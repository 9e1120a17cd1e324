"""Webhook intake: verified, durable, real-time changes from the providers, feeding raw.

* `contract`: what each provider's adapter (`sources/<slug>/webhooks.py`) implements: `verify` (its
  authentication of a delivery — signatures over the raw bytes in constant time, timestamp windows, basic
  auth, Salesforce org ids — and its split into journal events) and `interpret`.
* `verify`: dispatch of a delivery to its provider's adapter.
* `journal`: the intake journal (SQLite in WAL mode under the data dir); an event is acknowledged only
  once it is committed there.
* `server`: the ASGI app of `canonry webhooks serve` (one route per connection, /hooks/<connection id>).
* `interpret`: what an event means for raw (a full record, a delete, or "fetch this object again").
* `drain`: journal -> raw rows (deduplicated by event id, atomically with the record of what was applied),
  then an incremental sync for id-only events and a build of the affected lineage.

The HTTP handler never opens the DuckDB warehouse: only the drain writes there.
"""
