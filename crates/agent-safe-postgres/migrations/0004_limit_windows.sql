-- Per-caller windows of the rate limiter, the circuit breaker and cumulative risk, shared by
-- every replica (agent-safe-postgres). `state` is the PDP's JSON for the window; a check holds
-- the row from its read to its commit.
CREATE TABLE limit_windows (
    kind       text NOT NULL,
    key        text NOT NULL,
    state      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);
