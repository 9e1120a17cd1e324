-- Salesforce has one opportunity stage picklist (sales processes pick subsets of it): pipeline 'Opportunity'.
with stages as (
    select * from {{ ref('stg_salesforce__opportunity_stages') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as stage_id,
        'Opportunity' as pipeline,
        s.name,
        s.stage_order,
        s.is_closed,
        s.is_won,
        {{ standard_columns('salesforce') }}
    from stages as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
