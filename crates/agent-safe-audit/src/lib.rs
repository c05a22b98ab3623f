//! agent-safe hash-chained audit log: durable, locked appends, verification, repair and shipping.
