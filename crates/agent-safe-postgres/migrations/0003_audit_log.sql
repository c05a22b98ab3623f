-- The audit log: one hash chain for every replica (agent-safe-postgres). `line` is the entry
-- exactly as the file log writes it (without the newline), so an export is a file log;
-- `audit_head` is the chain's head, held (`FOR UPDATE`) by the transaction that appends the
-- next batch, which serialises appenders across replicas.
CREATE TABLE audit_log (
    seq            bigint PRIMARY KEY,
    event_id       text NOT NULL,
    event_type     text NOT NULL,
    correlation_id text,
    original_id    text,
    entry_hash     text NOT NULL,
    line           text NOT NULL
);
CREATE INDEX audit_log_event_id ON audit_log (event_id);
CREATE INDEX audit_log_correlation_id ON audit_log (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX audit_log_original_id ON audit_log (original_id) WHERE original_id IS NOT NULL;
CREATE TABLE audit_head (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq        bigint NOT NULL,
    entry_hash text NOT NULL
);
INSERT INTO audit_head (seq, entry_hash)
    VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');
