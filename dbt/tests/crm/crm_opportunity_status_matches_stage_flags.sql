-- Every CRM: an opportunity's status agrees with what its stage says. A stage flagged won holds only WON
-- opportunities, a closed stage not won only LOST ones, an open stage (is_closed = false) only OPEN ones.
-- Null flags are not checked: a stage that carries no outcome (Pipedrive: won/lost is the deal's status,
-- a won deal stays on its stage) says nothing the status could contradict. One row per contradiction.
select o.provider, o.connection_id, o.opportunity_id, o.status, s.stage_id, s.is_closed, s.is_won
from {{ ref('crm_opportunities') }} as o
join {{ ref('crm_stages') }} as s on s.stage_id = o.stage_id
where (s.is_won and o.status <> 'WON')
   or (s.is_closed and s.is_won = false and o.status <> 'LOST')
   or (s.is_closed = false and o.status <> 'OPEN')
