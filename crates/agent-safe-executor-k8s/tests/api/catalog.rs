//! The shipped catalog (`catalog/actions/*.yaml`) against the executor: every Kubernetes
//! action is mapped (or explicitly refused), every declared precheck has an implementation,
//! and the action matrix uses exactly the catalog's params.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use crate::harness::*;

/// The parts of an action definition these tests need.
#[derive(Debug, Deserialize)]
pub struct ActionDef {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub parameters: Vec<ParamDef>,
    #[serde(default, rename = "prechecks", deserialize_with = "names")]
    pub prechecks: Vec<String>,
    #[serde(default, rename = "state_fields", deserialize_with = "names")]
    pub state_fields: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ParamDef {
    pub name: String,
    #[serde(default)]
    pub required: bool,
}

fn names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Named {
        name: String,
    }
    let list: Option<Vec<Named>> = Option::deserialize(d)?;
    Ok(list.unwrap_or_default().into_iter().map(|n| n.name).collect())
}

pub type Catalog = BTreeMap<String, ActionDef>;

/// The catalog's Kubernetes actions by name.
pub fn load() -> Catalog {
    let dir = format!("{}/../../catalog/actions", env!("CARGO_MANIFEST_DIR"));
    let mut out = Catalog::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let def: ActionDef =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if def.tags.iter().any(|t| t == "kubernetes") {
            out.insert(def.name.clone(), def);
        }
    }
    out
}

#[test]
fn every_catalog_kubernetes_action_is_mapped_or_refused() {
    let catalog = load();
    let supported: Vec<&str> = agent_safe_executor_k8s::supported_actions().collect();
    let unmapped: Vec<&str> =
        catalog.keys().map(String::as_str).filter(|a| !supported.contains(a)).collect();
    assert_eq!(unmapped, ["exec-pod", "port-forward"]);
    for action in &supported {
        assert!(catalog.contains_key(*action), "`{action}` is not a catalog action");
    }
}

#[tokio::test]
async fn every_declared_precheck_is_implemented() {
    for def in load().values() {
        if def.name == "exec-pod" || def.name == "port-forward" {
            continue;
        }
        let names: Vec<&str> = def.prechecks.iter().map(String::as_str).collect();
        let (_api, client) = FakeApi::new();
        // Every request gets the fake's 500: what counts is that no check is unknown.
        let p = params(json!({"namespace": "n", "deployment": "d", "pod": "p", "node": "n",
            "configmap": "c", "secret": "s", "hpa": "h", "policy_name": "p", "policy": "{}",
            "container": "c", "min_replicas": 1, "max_replicas": 2}));
        for r in prechecks(&executor(client), &def.name, &p, &names).await {
            assert!(!r.message.starts_with("no precheck"), "{}: {}", def.name, r.message);
        }
    }
}
