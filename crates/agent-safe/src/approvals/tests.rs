//! Tests of approvals through the SDK.
