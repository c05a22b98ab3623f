//! Wording for action-file errors: names parameters by name, and knows the usual misplacements
//! (constraint keys directly on a parameter, `scope` instead of `fields`, `default_value`).

use crate::yaml::{Document, Hints, PathSegment};

/// Constraint keys, which belong under `constraints:`, not directly on the parameter.
const CONSTRAINT_KEYS: &[&str] =
    &["min_value", "max_value", "min_length", "max_length", "pattern", "enum"];

/// Keys of Kubernetes/AWS credential scopes, which belong under `credentials.fields`.
const SCOPE_KEYS: &[&str] =
    &["verbs", "resources", "api_groups", "namespaces", "resource_names", "actions", "arns"];

pub(crate) struct ActionHints;

impl Hints for ActionHints {
    fn name_node(&self, doc: &Document<'_>, at: &[PathSegment]) -> Option<String> {
        use PathSegment::{Index, Key};
        let name_of = |at: &[PathSegment]| {
            let mut path = at.to_vec();
            path.push("name".into());
            doc.get_str(&path).map(str::to_owned)
        };
        match at {
            [] => name_of(at).map(|n| format!("in action `{n}`")),
            [Key(list), Index(i)] => {
                let noun = match list.as_str() {
                    "parameters" => "on parameter",
                    "prechecks" => "in precheck",
                    "state_fields" => "in state field",
                    _ => return None,
                };
                Some(match name_of(at) {
                    Some(n) => format!("{noun} `{n}`"),
                    None => format!("in `{list}[{i}]`"),
                })
            }
            [Key(list), Index(i), Key(c)] if list == "parameters" && c == "constraints" => {
                Some(match name_of(&at[..2]) {
                    Some(n) => format!("in the constraints of parameter `{n}`"),
                    None => format!("in `parameters[{i}].constraints`"),
                })
            }
            [Key(c)] if c == "credentials" => Some("in `credentials`".to_owned()),
            [Key(r), Key(k)] if r == "rollback_params" => Some(format!("in rollback param `{k}`")),
            _ => None,
        }
    }

    fn relocate(&self, at: &[PathSegment], field: &str) -> Option<String> {
        use PathSegment::{Index, Key};
        let to = |s: &str| Some(s.to_owned());
        match at {
            [Key(list), Index(_)] if list == "parameters" => match field {
                f if CONSTRAINT_KEYS.contains(&f) => Some(format!("constraints.{f}")),
                "default_value" | "default_val" => to("default"),
                "min" | "minimum" => to("constraints.min_value"),
                "max" | "maximum" => to("constraints.max_value"),
                "regex" => to("constraints.pattern"),
                "allowed_values" | "choices" | "values" | "allowed" => to("constraints.enum"),
                "optional" => to("required"),
                "secret" => to("sensitive"),
                _ => None,
            },
            [Key(list), Index(_), Key(c)] if list == "parameters" && c == "constraints" => {
                match field {
                    "min" | "minimum" => to("min_value"),
                    "max" | "maximum" => to("max_value"),
                    "min_len" | "minlength" => to("min_length"),
                    "max_len" | "maxlength" => to("max_length"),
                    "regex" => to("pattern"),
                    "allowed_values" | "choices" | "values" | "allowed" => to("enum"),
                    _ => None,
                }
            }
            [Key(c)] if c == "credentials" => match field {
                "scope" | "scopes" => to("fields"),
                f if SCOPE_KEYS.contains(&f) => Some(format!("fields.{f}")),
                "kind" => to("type"),
                "lifetime" | "ttl_seconds" | "expiry" => to("ttl"),
                _ => None,
            },
            [] => match field {
                "params" => to("parameters"),
                "risk" | "risk_level" | "risk_classification" => to("risk_class"),
                "targets" | "target" => to("target_types"),
                "rollback" => to("rollback_action"),
                "privileges" => to("required_privileges"),
                "scope" => to("credentials.fields"),
                "state" => to("state_fields"),
                "precheck" => to("prechecks"),
                _ => None,
            },
            _ => None,
        }
    }
}
