//! `agent-safe schema KIND`: the JSON Schema of a file users write, generated from the types
//! that read it (schemars), the same as `schemas/<kind>.schema.json` in the repository.

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// An action definition (`actions/*.yaml`).
    Action,
    /// A policy file (`policies/*.yaml`).
    Policy,
    /// The inventory (`inventory.yaml`).
    Inventory,
    /// A policy-test file (`policy-tests/*.yaml`).
    PolicyTest,
    /// The configuration file (`agent-safe.yaml`).
    Config,
}

impl Kind {
    /// Every kind, in the order of `schemas/`.
    pub(crate) const ALL: [Kind; 5] =
        [Kind::Action, Kind::Policy, Kind::Inventory, Kind::PolicyTest, Kind::Config];

    /// The file name under `schemas/` (and `.agent-safe/schemas/` of an `init` project).
    pub(crate) fn file_name(self) -> &'static str {
        match self {
            Kind::Action => "action.schema.json",
            Kind::Policy => "policy.schema.json",
            Kind::Inventory => "inventory.schema.json",
            Kind::PolicyTest => "policy-test.schema.json",
            Kind::Config => "config.schema.json",
        }
    }

    /// The schema as pretty JSON with a final newline.
    pub(crate) fn text(self) -> anyhow::Result<String> {
        let schema = match self {
            Kind::Action => agent_safe_registry::action_schema(),
            Kind::Policy => agent_safe_pdp::policy_schema(),
            Kind::Inventory => agent_safe_registry::inventory_schema(),
            Kind::PolicyTest => agent_safe_pdp::policy_test_schema(),
            Kind::Config => agent_safe::config_schema(),
        };
        let mut text = serde_json::to_string_pretty(&schema)?;
        text.push('\n');
        Ok(text)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Which file's schema.
    #[arg(value_enum)]
    kind: Kind,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<u8> {
    crate::output::line(args.kind.text()?.trim_end());
    Ok(crate::exit::OK)
}
