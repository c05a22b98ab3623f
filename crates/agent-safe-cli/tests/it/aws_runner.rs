//! `agent-safe runner execute --executor aws` against moto's server, across processes:
//! `agent-safe check` → ticket → `agent-safe runner execute TOKEN --executor aws
//! --aws-endpoint-url <moto> --aws-region us-east-1 --vault-dir <dir>` stops a real (moto)
//! EC2 instance with the vault's `aws` credential → `agent-safe audit verify` succeeds, with
//! decision → execution → state capture linked.
//!
//! moto comes from `agent_safe_testkit::moto` (`AGENT_SAFE_MOTO_ENDPOINT` from `cargo
//! xtask ci`, else a server started from `target/moto-venv`); without either the test prints
//! `SKIPPED` and returns.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::{Command, Output};

use agent_safe_testkit::moto::{self as testing, REGION};
use serde_json::{Value, json};

use crate::common::{bin, catalog};

const KEY: &str = "cli-aws-runner-key-0123456789abcdef0123456789";

/// The binary in `dir` with `dir/agent-safe.yaml`, no colours, and nothing from the
/// environment that could change its credentials or configuration.
fn cli(dir: &Path) -> Command {
    let mut cmd = bin(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("--config").arg(dir.join("agent-safe.yaml"));
    cmd
}

#[track_caller]
fn ok(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or(Value::Null)
}

/// A project in `dir`: the catalog's actions and policies, an inventory with the instance
/// as `dev/moto-instance`, an audit log and a signing key; a file vault with moto's keys.
fn project(dir: &Path, instance_id: &str) {
    let inventory = json!({"targets": [{
        "id": "dev/moto-instance", "type": "aws-ec2-instance", "environment": "dev",
        "sensitivity": "public", "owner": "tests",
        "params": {"region": REGION, "instance_id": instance_id}}]});
    // JSON is YAML.
    std::fs::write(dir.join("inventory.yaml"), inventory.to_string()).unwrap();
    let config = json!({
        "registry": catalog().join("actions"),
        "policies": catalog().join("policies"),
        "inventory": "inventory.yaml",
        "audit_log": "audit.jsonl",
        "signing_key": KEY,
    });
    std::fs::write(dir.join("agent-safe.yaml"), config.to_string()).unwrap();
    let vault = dir.join("vault");
    std::fs::create_dir(&vault).unwrap();
    let file = vault.join("aws.json");
    std::fs::write(&file, Value::Object(testing::credential_payload()).to_string()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn check_then_execute_ec2_stop_with_the_aws_executor_then_verify() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let Some(moto) = testing::moto("cli runner execute --executor aws").await.unwrap() else {
            return;
        };
        let id = moto.run_instance().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        project(dir, &id);

        let params = json!({"instance_id": id, "region": REGION}).to_string();
        let decision = ok(&cli(dir)
            .args(["check", "ec2-stop-instance", "-t", "dev/moto-instance", "-c", "ops-bot"])
            .args(["-p", &params, "--json-output"])
            .output()
            .unwrap());
        assert_eq!(decision["result"], "allow", "{decision:#}");
        let token = decision["ticket"]["token"].as_str().unwrap();
        let decision_id = decision["audit_id"].as_str().unwrap();

        let result = ok(&cli(dir)
            .args(["runner", "execute", token, "--executor", "aws"])
            .args(["--aws-endpoint-url", moto.endpoint(), "--aws-region", REGION])
            .arg("--vault-dir")
            .arg(dir.join("vault"))
            .arg("--json-output")
            .output()
            .unwrap());
        assert_eq!(result["status"], "success", "{result:#}");
        assert_eq!(result["executor_type"], "aws");
        assert_eq!(result["audit_id"], decision_id);
        assert_eq!(
            result["before_state"],
            json!({"state": "running", "instance_type": "t3.micro"})
        );
        assert_eq!(result["after_state"], json!({"state": "stopped", "instance_type": "t3.micro"}));
        assert_eq!(result["credential_source"], "vault");
        let output: Value = serde_json::from_str(result["output"].as_str().unwrap()).unwrap();
        assert_eq!(output["previous_state"], "running", "{output:#}");

        // moto agrees.
        assert_eq!(moto.instance_state(&id).unwrap(), "stopped");

        ok(&cli(dir).args(["audit", "verify", "audit.jsonl"]).output().unwrap());
        let log = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
        let events: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["decision", "execution", "state_capture"]);
        assert_eq!(events[0]["event_id"], decision_id);
        assert!(events[1..].iter().all(|e| e["correlation_id"] == decision_id), "{log}");
        assert_eq!(events[1]["event_id"], result["execution_audit_id"]);
        assert_eq!(events[2]["event_id"], result["state_capture_id"]);
        assert_eq!(events[1]["context"]["status"], "success");
        assert_eq!(events[2]["context"]["execution_event_id"], events[1]["event_id"]);
        assert_eq!(events[2]["context"]["after_state"]["state"], "stopped");
    });
}

/// `credentials.vault: {type: sts, …}` in agent-safe.yaml, with `require_scoped`: `credential
/// resolve` and `runner execute` each assume the role with the action's session policy (what
/// moto recorded), and the instance stops on the session's keys.
#[test]
fn the_sts_vault_from_agent_safe_yaml_scopes_every_session() {
    const ROLE: &str = "arn:aws:iam::123456789012:role/agent-safe-runner";
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let Some(moto) = testing::moto("cli sts vault from agent-safe.yaml").await.unwrap() else {
            return;
        };
        let id = moto.run_instance().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        project(dir, &id);
        // The configuration of every front: the STS vault (its own keys from the environment,
        // as the SDK's default chain finds them), only scoped credentials.
        let path = dir.join("agent-safe.yaml");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["credentials"] = json!({
            "require_scoped": true,
            "vault": {"type": "sts", "role_arn": ROLE, "region": REGION,
                      "endpoint_url": moto.endpoint(), "session_duration": 900},
        });
        std::fs::write(&path, config.to_string()).unwrap();
        let cli = |args: &[&str]| {
            let mut cmd = cli(dir);
            cmd.args(args)
                .env("AWS_ACCESS_KEY_ID", "AKIDVAULTITSELF")
                .env("AWS_SECRET_ACCESS_KEY", "vault-own-secret")
                .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
                .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-aws-credentials"))
                .env("AWS_EC2_METADATA_DISABLED", "true");
            cmd.output().unwrap()
        };

        let params = json!({"instance_id": id, "region": REGION}).to_string();
        let decision = ok(&cli(&[
            "check",
            "ec2-stop-instance",
            "-t",
            "dev/moto-instance",
            "-c",
            "ops-bot",
            "-p",
            &params,
            "--json-output",
        ]));
        let token = decision["ticket"]["token"].as_str().unwrap();

        let resolved =
            ok(&cli(&["credential", "resolve", token, "--json-output", "--show-secret"]));
        let credential = &resolved["credential"];
        assert_eq!(credential["type"], "aws", "{resolved:#}");
        let key = credential["payload"]["access_key_id"].as_str().unwrap().to_owned();
        assert!(credential["payload"]["session_token"].is_string(), "{resolved:#}");

        let result = ok(&cli(&[
            "runner",
            "execute",
            token,
            "--executor",
            "aws",
            "--aws-endpoint-url",
            moto.endpoint(),
            "--aws-region",
            REGION,
            "--json-output",
        ]));
        assert_eq!(result["status"], "success", "{result:#}");
        assert_eq!(result["credential_source"], "vault");
        assert_eq!(result["after_state"]["state"], "stopped");

        // Two sessions, each with the action's policy on this one instance.
        let data: Value = serde_json::from_str(&moto.get("/moto-api/data.json").unwrap()).unwrap();
        let assumed = data["sts"]["AssumedRole"].as_array().unwrap();
        assert_eq!(assumed.len(), 2, "{assumed:#?}");
        let instance = format!("arn:aws:ec2:{REGION}:*:instance/{id}");
        for session in assumed {
            assert_eq!(session["role_arn"], ROLE);
            let policy: Value = serde_json::from_str(session["policy"].as_str().unwrap()).unwrap();
            assert_eq!(policy["Statement"][0]["Action"], json!(["ec2:StopInstances"]));
            assert_eq!(policy["Statement"][0]["Resource"], json!([instance]));
        }
        assert_eq!(assumed[0]["access_key_id"], key.as_str());
        assert_ne!(assumed[1]["access_key_id"], key.as_str());
        let log = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
        assert!(!log.contains(&key), "a session key was audited");
    });
}
