-- The transparency layer over the database's audit log (agent-safe-tlog, issue #18): the
-- RFC 9162 Merkle tree of `audit_log`'s lines in `seq` order, kept as every complete
-- subtree's hash in the order a growing log completes them (Go's sumdb "stored hash" layout,
-- as the file log's `<log>.tree`), and the signed checkpoints.
CREATE TABLE audit_tree (
    idx  bigint PRIMARY KEY,        -- stored hash index
    hash bytea NOT NULL CHECK (length(hash) = 32)
);
-- How far the tree goes: `leaves` entries of `audit_log` (seq 1..leaves), the last one's leaf
-- hash (to notice a log replaced under the tree). One row; moved with a compare-and-set.
CREATE TABLE audit_tree_state (
    id        smallint PRIMARY KEY CHECK (id = 1),
    leaves    bigint NOT NULL,
    last_leaf bytea
);
INSERT INTO audit_tree_state (id, leaves, last_leaf) VALUES (1, 0, NULL);
-- Signed checkpoints (C2SP tlog-checkpoint notes) and their records, oldest first.
CREATE TABLE audit_checkpoints (
    id        bigserial PRIMARY KEY,
    tree_size bigint NOT NULL,
    event_id  text NOT NULL,
    record    text NOT NULL         -- the JSON record, as a line of a file log's `.checkpoints`
);
