//! Credential-scope templates: `{{ params.x }}` in the string values of an action's
//! `credentials.fields`, filled from the ticket's params under the plain-token rule.
//!
//! # The plain-token rule
//!
//! A substituted value must not be able to widen the scope it lands in (an ARN, a namespace
//! list, a vault path). It is accepted when it is a **plain token**: 1 or more characters from
//! `A-Z`, `a-z`, `0-9`, `-`, `_` and `.`, and not only dots (`.` and `..` are path steps). That
//! covers Kubernetes names, AWS ids and names, regions and numbers. Everything else — `*` and
//! `?` (wildcards), `/` and `:` (path and ARN separators), `,` and `=` (list and selector
//! syntax), `$`, `{`, `%`, quotes, whitespace, and every non-ASCII character (so look-alikes
//! such as fullwidth `＊`, `∗`, `／`, `：` and homoglyph letters are covered without a list) —
//! is refused **unless the parameter declares a `pattern` and the value matches it**: the
//! action's author has then stated exactly which values are legitimate (e.g. an S3 object key
//! pattern that permits `/` but not `*` or `?`). The pattern is the one in the registry the
//! resolver uses, matched against the text that is substituted (Python `str(value)`).
//!
//! Some values are refused even when a pattern matches: the empty string (an empty namespace
//! or name often means "all"), control characters (`\n`, `\r`, `\t`, NUL, C1 controls),
//! invisible format characters (zero-width spaces and joiners, bidirectional overrides, the
//! byte-order mark, tag characters) and the Unicode line and paragraph separators. No
//! legitimate scope needs them, and they are how a value hides what it is.
//!
//! A reference to a param the ticket does not carry is an error (Python left the template in
//! place, producing a scope nobody wrote), and so is `{{` that does not start a well-formed
//! `{{ params.<name> }}` reference. Keys are never templated; non-string values are copied
//! unchanged; the replacement text is Python's `str(value)` (`True`, `None`, `3`, `1.5`).

use std::collections::BTreeMap;

use agent_safe_core::{CredentialScope, Params};
use agent_safe_registry::{CredentialSpec, RegisteredAction};
use serde_json::Value;

/// A scope template could not be filled in. Messages name the scope field and the param,
/// never the value (a param may be sensitive).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template refers to a param the ticket does not carry.
    #[error("scope field `{field}` refers to `params.{param}`, which the ticket does not carry")]
    MissingParam {
        /// The scope field, e.g. `resources[0]`.
        field: String,
        /// The param name.
        param: String,
    },
    /// The param's value is not a plain token and no declared pattern allows it.
    #[error("scope field `{field}`: the value of `params.{param}` {reason}")]
    NotPlain {
        /// The scope field, e.g. `resources[0]`.
        field: String,
        /// The param name.
        param: String,
        /// Why it was refused (names the offending character, not the value).
        reason: String,
    },
    /// `{{` that does not start a `{{ params.<name> }}` reference.
    #[error(
        "scope field `{field}` contains `{{{{` that does not start a `{{{{ params.<name> }}}}` \
         template"
    )]
    Malformed {
        /// The scope field.
        field: String,
    },
}

/// Whether `value` is a plain token: non-empty, only `A-Z`, `a-z`, `0-9`, `-`, `_`, `.`, and
/// not only dots.
///
/// ```
/// use agent_safe_credentials::is_plain_token;
/// assert!(is_plain_token("prod-eu.api_1"));
/// for widening in ["*", "a/b", "../x", "a:b", "a b", "ａ", "＊", "..", ""] {
///     assert!(!is_plain_token(widening), "{widening:?}");
/// }
/// ```
pub fn is_plain_token(value: &str) -> bool {
    violation(value).is_none()
}

/// The scope of `spec` (the `credentials` block of `action`) with every template filled from
/// `params` under the plain-token rule; patterns come from `action`'s parameters.
///
/// ```
/// use std::path::PathBuf;
/// use agent_safe_registry::Registry;
/// use agent_safe_credentials::render_scope;
///
/// let yaml = b"name: s3-get\nversion: 1.0.0\ndescription: Get\nrisk_class: low\n\
///     target_types: [aws-s3-object]\nparameters:\n  - {name: bucket, type: string}\n\
///     credentials:\n  type: aws\n  fields:\n    resources: ['arn:aws:s3:::{{ params.bucket }}/*']\n";
/// let registry = Registry::from_sources([(PathBuf::from("s3-get.yaml"), &yaml[..])])?;
/// let action = registry.get("s3-get").unwrap();
/// let spec = action.definition().credentials.as_ref().unwrap();
///
/// let ok = serde_json::json!({"bucket": "logs"});
/// let scope = render_scope(spec, action, ok.as_object().unwrap())?;
/// assert_eq!(scope.fields["resources"][0], "arn:aws:s3:::logs/*");
///
/// let widening = serde_json::json!({"bucket": "*"});
/// let err = render_scope(spec, action, widening.as_object().unwrap()).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "scope field `resources[0]`: the value of `params.bucket` contains `*`, which a plain \
///      token may not contain, and parameter `bucket` declares no pattern that allows it"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_scope(
    spec: &CredentialSpec,
    action: &RegisteredAction,
    params: &Params,
) -> Result<CredentialScope, TemplateError> {
    let renderer = Renderer { params, action };
    Ok(CredentialScope {
        kind: spec.kind.clone(),
        fields: renderer.render_map(&spec.fields)?,
        ttl: spec.ttl,
    })
}

struct Renderer<'a> {
    params: &'a Params,
    action: &'a RegisteredAction,
}

impl Renderer<'_> {
    fn render_map(
        &self,
        fields: &BTreeMap<String, Value>,
    ) -> Result<serde_json::Map<String, Value>, TemplateError> {
        fields.iter().map(|(k, v)| Ok((k.clone(), self.render(v, k)?))).collect()
    }

    fn render(&self, value: &Value, field: &str) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(text) => Value::String(self.render_str(text, field)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.render(v, &format!("{field}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render(v, &format!("{field}.{k}"))?)))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    fn render_str(&self, text: &str, field: &str) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let Some((param, after)) = parse_reference(&rest[start + 2..]) else {
                return Err(TemplateError::Malformed { field: field.to_owned() });
            };
            out.push_str(&self.substitute(param, field)?);
            rest = after;
        }
        out.push_str(rest);
        Ok(out)
    }

    fn substitute(&self, param: &str, field: &str) -> Result<String, TemplateError> {
        let Some(value) = self.params.get(param) else {
            return Err(TemplateError::MissingParam {
                field: field.to_owned(),
                param: param.to_owned(),
            });
        };
        let text = agent_safe_core::pyrepr::str(value);
        let Some(problem) = violation(&text) else {
            return Ok(text);
        };
        let refuse = |reason: String| TemplateError::NotPlain {
            field: field.to_owned(),
            param: param.to_owned(),
            reason,
        };
        let no_pattern = format!("parameter `{param}` declares no pattern that allows it");
        let mismatch = format!("does not match the pattern of parameter `{param}`");
        match (problem, self.action.pattern_matches(param, &text)) {
            (Violation::Always(reason), _) => Err(refuse(reason)),
            (_, Some(true)) => Ok(text),
            (Violation::Char(c), None) => Err(refuse(format!(
                "contains {c}, which a plain token may not contain, and {no_pattern}"
            ))),
            (Violation::Char(c), Some(false)) => {
                Err(refuse(format!("is not a plain token (it contains {c}) and {mismatch}")))
            }
            (Violation::Dots, None) => {
                Err(refuse(format!("is only dots (a path step), and {no_pattern}")))
            }
            (Violation::Dots, Some(false)) => {
                Err(refuse(format!("is only dots (a path step) and {mismatch}")))
            }
        }
    }
}

/// Parses `\s* params . <word chars> \s* }}` (what follows `{{`, as Python's
/// `\{\{\s*params\.(\w+)\s*\}\}`); returns the param name and the text after `}}`.
fn parse_reference(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start().strip_prefix("params.")?;
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let (name, rest) = s.split_at(end);
    let rest = rest.trim_start().strip_prefix("}}")?;
    Some((name, rest))
}

/// Why a substituted value is not a plain token.
enum Violation {
    /// Refused even when a pattern matches; the reason.
    Always(String),
    /// Refused unless the parameter's pattern matches: contains this (described) character.
    Char(String),
    /// Refused unless the parameter's pattern matches: only dots.
    Dots,
}

fn violation(value: &str) -> Option<Violation> {
    if value.is_empty() {
        return Some(Violation::Always("is empty".to_owned()));
    }
    if let Some(c) = value.chars().find(|&c| never_allowed(c)) {
        return Some(Violation::Always(format!(
            "contains {}, which is never allowed in a credential scope",
            describe(c)
        )));
    }
    if let Some(c) = value.chars().find(|&c| !(c.is_ascii_alphanumeric() || "-_.".contains(c))) {
        return Some(Violation::Char(describe(c)));
    }
    if value.bytes().all(|b| b == b'.') {
        return Some(Violation::Dots);
    }
    None
}

/// Control characters, invisible format characters and line/paragraph separators.
fn never_allowed(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// A character for a message: printable ones quoted, invisible ones by code point only.
fn describe(c: char) -> String {
    let code = u32::from(c);
    if c == ' ' {
        "a space".to_owned()
    } else if c.is_ascii_graphic() {
        format!("`{c}`")
    } else if never_allowed(c) || c.is_whitespace() {
        format!("U+{code:04X}")
    } else {
        format!("`{c}` (U+{code:04X})")
    }
}

#[cfg(test)]
mod tests;
