-- Approval requests, shared by every replica (agent-safe-postgres). `line` is the request as the
-- file store writes it (one sorted-key JSON object); `status` mirrors its status for listing
-- the pending ones; `seq` is the order of creation.
CREATE TABLE approval_requests (
    seq    bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id     text PRIMARY KEY,
    status text NOT NULL,
    line   text NOT NULL
);
CREATE INDEX approval_requests_pending ON approval_requests (seq) WHERE status = 'pending';
