//! The catalog's Kubernetes actions as types, shared by the two Kubernetes executors
//! (`agent-safe-executor-kubectl` and `agent-safe-executor-k8s`), so that both dispatch on one
//! enum and build the bodies they send from one place.
//!
//! - [`K8sAction`]: every Kubernetes action of the catalog, by name, with the [`Object`] it
//!   works on (whose state is captured and whose existence the prechecks test).
//! - [`Request`]: one call's params parsed into typed fields (namespace, name, replicas…).
//!   The executors check params differently (kubectl needs values that are safe as command-line
//!   arguments; the API executor only needs the right JSON types) and word their errors their
//!   own way, so [`Request::parse`] reads each param through the executor's [`ParamReader`];
//!   which params an action has, their order, types, defaults and the rules between them live
//!   here.
//! - The bodies both executors send: [`hpa_limits_patch`], [`scale_hpa_patch`],
//!   [`configmap_patch`], [`network_policy_manifest`], and the restart annotation
//!   ([`restart_patch`]).
//!
//! This crate has no Kubernetes client and no runtime: only `serde_json`.
//!
//! ```
//! use agent_safe_k8s_actions::{K8sAction, Object};
//!
//! let action = K8sAction::from_name("scale-hpa").ok_or("unknown")?;
//! assert_eq!(action.object(), Object::HorizontalPodAutoscaler);
//! assert_eq!(action.object().name_param(), "hpa");
//! # Ok::<(), &str>(())
//! ```

mod action;
mod body;
mod request;

pub use action::{K8sAction, Object};
pub use body::{
    RESTARTED_AT_ANNOTATION, configmap_patch, hpa_limits_patch, network_policy_manifest,
    restart_patch, scale_hpa_patch,
};
pub use request::{
    DEFAULT_DRAIN_TIMEOUT_SECS, HpaTarget, NO_HPA_TARGET, Param, ParamReader, Request, Target,
};
