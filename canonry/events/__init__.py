"""Outbound change events: canonical creates, updates and deletes, signed and delivered to subscribers.

subscribers.py  who receives what (tenant, URL, event patterns, retry policy); secrets in the secret store
capture.py      after each build: what changed in the canonical tables -> ops.change_events, ops.deliveries
delivery.py     signed POSTs (Standard Webhooks), back-off, dead letters, replay, status
cli.py          `canonry events ...`

docs/EVENTS.md describes the events, the signature and how a receiver verifies it.
"""
