"""Reverse ETL: push the desired state selected by a dbt model (`rev_<provider>__<object>`) back into a CRM.

* `plan(model)` diffs the model against `ops.push_state` (the hash of what was last pushed per record):
  inserts (never pushed), updates (hash changed), deletes (left the model; only where configured).
* `push(model, verdict)` sends the plan in provider-sized batches through the provider's writer
  (`sources/<provider>/actions.py`), over `runtime.session()` (rate budget, retries, error taxonomy).
  Before each batch its records are logged `in_flight` in `ops.push_log` with an idempotency key (hash of
  record key + version); after it, each is `written` (and `ops.push_state` updated) or `rejected` with the
  provider's message (retried next run). A record left `in_flight` by a crash is *in doubt*: the next run
  reads it back from the provider and, when the provider already holds that version, marks it `verified`
  instead of writing it again, so a crash never causes a second write and never loses one.
* `gate(model)` is the validation gate: the dbt build of the model and its upstream (dbt tests included)
  and the GE suites of the canonical tables it reads must pass in that same build, else the push refuses.
"""

from canonry.reverse_etl.engine import (
    GateVerdict,
    Plan,
    PushRefused,
    PushResult,
    gate,
    gates,
    model_info,
    plan,
    push,
)

__all__ = ["GateVerdict", "Plan", "PushRefused", "PushResult", "gate", "gates", "model_info", "plan", "push"]
