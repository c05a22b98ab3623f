//! agent-safe policy decision point: rules, matching, evaluation, rate limits, policy tests.
