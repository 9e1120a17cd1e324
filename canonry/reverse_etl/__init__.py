"""Reverse ETL: push the desired state selected by a dbt model (`rev_<provider>__<object>`) back into a CRM.

* A *sync* (`reverse_etl/<name>.yml`, see syncs.py) says which model goes to which CRM object, in which
  mode, matched by which key, with which field mappings; a model pushed by name gets an implied sync.
* `plan(sync)` (planner.py) diffs the model against `ops.push_state` (the field values last confirmed per
  record): creates, updates carrying only the changed fields, deletes (mode mirror), unchanged.
* Natural keys (matching.py): where the CRM has no upsert by the key (Salesforce, Pipedrive), records to
  create or update by key are looked up before writing — one match is updated by id, none created, several
  are that row's `data_error` — and a Pipedrive create a crash left in flight is searched before it is sent
  again.
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

from canonry.reverse_etl.engine import GateVerdict, PushRefused, gate, gates, model_info, plan, sync_for
from canonry.reverse_etl.planner import Plan
from canonry.reverse_etl.pusher import PushResult, push, release_parked

__all__ = ["GateVerdict", "Plan", "PushRefused", "PushResult", "gate", "gates", "model_info", "plan", "push",
           "release_parked", "sync_for"]
