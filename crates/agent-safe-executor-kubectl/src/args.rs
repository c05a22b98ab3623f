//! Checked parameter values for kubectl argument lists. Every value becomes exactly one argv
//! element (or one part of one, after a fixed `--flag=` or `type/` prefix); it is never
//! split and never reaches a shell. Names must be DNS-1123 names, and no value may start
//! with `-`, so none can be taken for an option. Everything is checked before any process
//! starts.

use agent_safe_core::Params;
use agent_safe_k8s_actions::{Param, ParamReader};
use serde_json::{Map, Value};

/// Why a call's params cannot be turned into a kubectl command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(message: String) -> Result<T, Refusal> {
    Err(Refusal(message))
}

/// Read access to a call's params with the checks kubectl arguments need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct P<'a>(pub(crate) &'a Params);

/// How a value is shown in a refusal: escaped, cut to 80 characters.
fn shown(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cut: String = text.chars().take(80).collect();
    let cut = if cut.len() < text.len() { format!("{cut}…") } else { cut };
    escape_controls(&cut)
}

/// `s` with control characters escaped (`\n`, `\u{1b}`), so a refusal prints on one line.
pub(crate) fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

impl<'a> P<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn required(&self, name: &str) -> Result<&'a Value, Refusal> {
        self.get(name).map_or_else(|| refuse(format!("missing param `{name}`")), Ok)
    }

    fn string(&self, name: &str) -> Result<&'a str, Refusal> {
        match self.required(name)? {
            Value::String(s) => Ok(s),
            other => refuse(format!("param `{name}` must be a string, got `{}`", shown(other))),
        }
    }

    /// A string that may stand on its own in an argument list: not empty, no leading `-`, no
    /// control characters.
    pub(crate) fn arg(&self, name: &str) -> Result<&'a str, Refusal> {
        let s = self.string(name)?;
        check_arg(name, s)?;
        Ok(s)
    }

    /// A DNS-1123 subdomain (object names: pods, nodes, configmaps…), at most 253 characters.
    pub(crate) fn name(&self, name: &str) -> Result<&'a str, Refusal> {
        let s = self.arg(name)?;
        if s.len() <= 253 && s.split('.').all(is_label) {
            Ok(s)
        } else {
            refuse(format!(
                "param `{name}` must be a DNS-1123 name (lowercase letters, digits, `-` and `.`, \
                 starting and ending with a letter or digit, at most 253 characters), got `{}`",
                shown(&Value::String(s.to_owned()))
            ))
        }
    }

    /// A DNS-1123 label (namespaces, containers), at most 63 characters.
    pub(crate) fn label(&self, name: &str) -> Result<&'a str, Refusal> {
        let s = self.arg(name)?;
        if is_label(s) {
            Ok(s)
        } else {
            refuse(format!(
                "param `{name}` must be a DNS-1123 label (lowercase letters, digits and `-`, \
                 starting and ending with a letter or digit, at most 63 characters), got `{}`",
                shown(&Value::String(s.to_owned()))
            ))
        }
    }

    /// An integer in `min..=max` (a JSON integer, or a float with no fraction).
    pub(crate) fn int(&self, name: &str, min: i64, max: i64) -> Result<i64, Refusal> {
        let v = self.required(name)?;
        let n = match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
            }),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => refuse(format!(
                "param `{name}` must be an integer from {min} to {max}, got `{}`",
                shown(v)
            )),
        }
    }

    pub(crate) fn opt_int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, Refusal> {
        if self.get(name).is_none() { Ok(None) } else { self.int(name, min, max).map(Some) }
    }

    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool, Refusal> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => {
                refuse(format!("param `{name}` must be true or false, got `{}`", shown(other)))
            }
        }
    }

    /// A container image reference: at most 255 characters from `A-Za-z0-9._:/@-`, not
    /// starting with `-`.
    pub(crate) fn image(&self, name: &str) -> Result<&'a str, Refusal> {
        let s = self.arg(name)?;
        let ok = s.len() <= 255
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:/@-".contains(&b));
        if ok {
            Ok(s)
        } else {
            refuse(format!(
                "param `{name}` must be an image reference such as `registry/app:1.2`, got `{}`",
                shown(&Value::String(s.to_owned()))
            ))
        }
    }

    /// Any string (it only ever goes into a JSON document).
    pub(crate) fn text(&self, name: &str) -> Result<&'a str, Refusal> {
        self.string(name)
    }

    /// A JSON object given as a string.
    pub(crate) fn json_object(
        &self,
        name: &str,
    ) -> Result<serde_json::Map<String, Value>, Refusal> {
        let s = self.string(name)?;
        match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => refuse(format!("param `{name}` must be a JSON object")),
            Err(e) => refuse(format!("param `{name}` is not valid JSON: {e}")),
        }
    }

    /// A command for `kubectl exec`: a non-empty list of at most 256 strings without NUL
    /// characters, 64 KiB in all. These follow `--`, so kubectl never reads them as options;
    /// they may start with `-` (they are the command's own arguments).
    pub(crate) fn command(&self, name: &str) -> Result<Vec<&'a str>, Refusal> {
        let bad = || {
            refuse(format!(
                "param `{name}` must be a non-empty list of at most 256 strings without NUL \
                 characters (64 KiB in all)"
            ))
        };
        let Value::Array(items) = self.required(name)? else { return bad() };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) if !s.contains('\0') => out.push(s.as_str()),
                _ => return bad(),
            }
        }
        let total: usize = out.iter().map(|s| s.len()).sum();
        if out.is_empty() || out.len() > 256 || total > 64 * 1024 || out[0].is_empty() {
            return bad();
        }
        Ok(out)
    }
}

/// The range kubectl accepts for an integer param.
fn range(param: Param) -> (i64, i64) {
    match param {
        Param::Replicas => (0, 100_000),
        Param::GracePeriod => (0, 86_400),
        Param::Timeout => (1, 86_400),
        Param::TailLines => (1, 1_000_000),
        Param::Revision | Param::MinReplicas | Param::MaxReplicas => (1, i64::from(i32::MAX)),
        Param::TargetCpuPercent | Param::TargetMemoryPercent => (1, 100),
        Param::LocalPort => (1024, 65_535),
        Param::RemotePort => (1, 65_535),
        _ => (i64::MIN, i64::MAX),
    }
}

/// The typed parse of a call (`agent_safe_k8s_actions::Request::parse`) reads through these
/// checks: object names are DNS-1123 names, namespaces and containers DNS-1123 labels, images
/// image references, integers in kubectl's ranges; nothing can be read as an option.
impl<'a> ParamReader<'a> for P<'a> {
    type Error = Refusal;

    fn string(&self, param: Param) -> Result<&'a str, Refusal> {
        let name = param.name();
        match param {
            Param::Namespace | Param::Container => self.label(name),
            Param::Image => self.image(name),
            Param::Value | Param::Policy => self.text(name),
            Param::Key => {
                let key = self.arg(name)?;
                if key.len() > 253
                    || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                {
                    return refuse(format!(
                        "param `key` must be a ConfigMap key (letters, digits, `-`, `_` and `.`, \
                         at most 253 characters), got `{}`",
                        escape_controls(key)
                    ));
                }
                Ok(key)
            }
            p if p.is_object_name() => self.name(name),
            _ => self.arg(name),
        }
    }

    fn opt_string(&self, param: Param) -> Result<Option<&'a str>, Refusal> {
        if self.get(param.name()).is_none() {
            Ok(None)
        } else {
            ParamReader::string(self, param).map(Some)
        }
    }

    fn int(&self, param: Param) -> Result<i64, Refusal> {
        let (min, max) = range(param);
        P::int(self, param.name(), min, max)
    }

    fn opt_int(&self, param: Param) -> Result<Option<i64>, Refusal> {
        let (min, max) = range(param);
        P::opt_int(self, param.name(), min, max)
    }

    fn bool_or(&self, param: Param, default: bool) -> Result<bool, Refusal> {
        P::bool_or(self, param.name(), default)
    }

    fn json_object(&self, param: Param) -> Result<Map<String, Value>, Refusal> {
        P::json_object(self, param.name())
    }

    fn strings(&self, param: Param) -> Result<Vec<&'a str>, Refusal> {
        self.command(param.name())
    }

    fn out_of_range(&self, param: Param, value: i64) -> Refusal {
        let (min, max) = range(param);
        Refusal(format!("param `{param}` must be an integer from {min} to {max}, got `{value}`"))
    }

    fn invalid(&self, message: &str) -> Refusal {
        Refusal(message.to_owned())
    }
}

/// A value that stands alone in an argument list.
pub(crate) fn check_arg(name: &str, s: &str) -> Result<(), Refusal> {
    if s.is_empty() {
        return refuse(format!("param `{name}` must not be empty"));
    }
    if s.starts_with('-') {
        return refuse(format!(
            "param `{name}` must not start with `-` (it would be read as an option), got `{}`",
            shown(&Value::String(s.to_owned()))
        ));
    }
    if s.chars().any(char::is_control) {
        return refuse(format!(
            "param `{name}` must not contain control characters, got `{}`",
            shown(&Value::String(s.to_owned()))
        ));
    }
    Ok(())
}

/// A DNS-1123 label: 1–63 of `a-z0-9-`, starting and ending with a letter or digit.
pub(crate) fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}
