-- One row per opportunity: its latest state (deleted or not) with the fields of its latest live body
-- (the deleted feed's stubs carry only id/deletedAt/deletedBy).
with latest as (
    {{ latest_raw(source('lever', 'opportunities')) }}
),

bodies as (
    {{ latest_raw(source('lever', 'opportunities'), where='not is_deleted') }}
),

unpacked as (
    select
        l.connection_id,
        l.remote_id,
        l.remote_updated_at,
        l.is_deleted,
        l.extracted_at,
        l._dlt_load_id as _load_id,
        {{ epoch_ms_ts(json_str('b.payload', 'createdAt')) }} as remote_created_at,
        {{ json_str('b.payload', 'contact') }} as contact_remote_id,
        {{ json_str('b.payload', 'name') }} as name,
        {{ json_str('b.payload', 'headline') }} as headline,
        {{ json_str('b.payload', 'location') }} as location,
        coalesce({{ json_part('b.payload', 'emails') }}, '[]') as emails,
        coalesce({{ json_part('b.payload', 'phones') }}, '[]') as phones,
        coalesce({{ json_part('b.payload', 'links') }}, '[]') as links,
        coalesce({{ json_part('b.payload', 'tags') }}, '[]') as tags,
        {{ lever_question_values('b.payload') }} as custom_question_values,  -- {field id: value}: named in int models
        {{ json_str('b.payload', 'sources[0]') }} as source_name,
        {{ json_str('b.payload', 'origin') }} as origin,
        {{ json_str('b.payload', 'stage') }} as stage_remote_id,
        {{ json_str('b.payload', 'owner') }} as owner_remote_id,
        {{ json_str('b.payload', 'sourcedBy') }} as sourced_by_remote_id,
        {{ json_str('b.payload', 'confidentiality') }} as confidentiality,
        {{ epoch_ms_ts(json_str('b.payload', 'archived.archivedAt')) }} as archived_at,
        {{ json_str('b.payload', 'archived.reason') }} as archive_reason_remote_id,
        {{ json_str('b.payload', 'applications[0].posting') }} as posting_remote_id,
        {{ epoch_ms_ts(json_str('b.payload', 'applications[0].createdAt')) }} as applied_at,
        {{ epoch_ms_ts(json_str('b.payload', 'lastInteractionAt')) }} as last_interaction_at,
        {{ json_str('b.payload', 'dataProtection.contact.allowed') }} as contact_allowed
    from latest as l
    left join bodies as b on b.connection_id = l.connection_id and b.remote_id = l.remote_id
)

select * from unpacked
