//! Action registry (being written).
