-- Audit shipping's cursors (agent-safe-postgres): per destination, the last entry of
-- `audit_log` shipped there. Written only by the process holding the destination's session
-- advisory lock (`pg_try_advisory_lock(hashtextextended('agent-safe ship ' || id, 0))`), so
-- one process of the cluster ships to each destination and the others stand by.
CREATE TABLE ship_cursors (
    id          text PRIMARY KEY,   -- <kind>-<first 12 hex digits of SHA-256(destination)>
    kind        text NOT NULL,
    destination text NOT NULL,      -- as messages show it (no secrets)
    position    bigint NOT NULL,    -- audit_log.seq of the last entry shipped
    entry_seq   bigint,             -- that entry's `seq` field (none in lines Python wrote)
    entry_hash  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
