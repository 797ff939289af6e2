-- Feedback tickets, as an append-only log of changes.
--
-- Every change of a ticket (creation, transition, assignment, comment, priority
-- change) appends one row holding the whole ticket as it is after the change, with
-- the next version. The current state of a ticket is its row of highest version;
-- the history is all its rows in version order. Nothing is ever updated in place,
-- so the audit trail is complete by construction.
--
-- The service serializes the changes of one ticket and checks the expected
-- version before appending (see services/tickets): two agents changing the same
-- ticket at once cannot both win. The sorting key (ticket_id, version) makes a
-- replayed append of the same version fold into one row.
--
-- Times are epoch milliseconds (UInt64): DateTime64 does not exist on 18.16;
-- 0 means "not yet" (first response, resolution, closing).
CREATE TABLE IF NOT EXISTS ticket_events
(
    ticket_id String,
    number UInt64,
    version UInt32,
    change String,
    actor String,
    at_ms UInt64,
    title String,
    description String,
    category String,
    impact String,
    urgency String,
    priority String,
    priority_reason String,
    state String,
    assignee String,
    reporter String,
    channel String,
    affected_user String,
    release String,
    launch String,
    tags Array(String),
    links Array(String),
    created_ms UInt64,
    first_response_ms UInt64,
    resolved_ms UInt64,
    closed_ms UInt64,
    resolution String,
    comment String,
    comment_visibility String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (ticket_id, version);
