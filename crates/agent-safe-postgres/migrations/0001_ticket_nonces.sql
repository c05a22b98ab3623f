-- Execution-ticket nonces, consumed at most once across every replica (agent-safe-postgres).
CREATE TABLE ticket_nonces (
    nonce      text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX ticket_nonces_expires_at ON ticket_nonces (expires_at);
