//! agent-safe SDK: the AgentSafe facade wiring registry, policies, audit and tickets.
