//! Fuzz policy loading, compilation and evaluation: whatever loads must evaluate without
//! panicking.
#![no_main]

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe_core::Params;
use agent_safe_pdp::{Caller, Pdp, PdpConfig, Request, policy};
use agent_safe_registry::{Inventory, Registry};

const ACTION: &[u8] = b"name: restart-deployment\nversion: 1.0.0\ndescription: d\nrisk_class: medium\ntarget_types: [k8s-deployment]\n";
const INVENTORY: &[u8] = b"targets:\n  - {id: dev/app, type: k8s-deployment, environment: dev, sensitivity: public}\n";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rules) = policy::load_sources([(PathBuf::from("policies/fuzz.yaml"), text)]) else { return };
    let Ok(registry) = Registry::from_sources([(PathBuf::from("a.yaml"), ACTION)]) else { return };
    let Ok(inventory) = Inventory::from_source(std::path::Path::new("i.yaml"), INVENTORY) else { return };
    let Ok(pdp) = Pdp::new(Arc::new(registry), Arc::new(inventory), rules, PdpConfig::default()) else { return };
    let params = Params::new();
    for target in [None, Some("dev/app"), Some("nope")] {
        let _ = pdp.evaluate(
            &Request { action: "restart-deployment", target, caller: Caller::Anonymous, params: &params, ticket_id: None },
            time::OffsetDateTime::UNIX_EPOCH,
        );
    }
    let _ = pdp.analyse();
});
