//! Parameter validation (SPEC §1.3): the Python algorithm, order and messages, with regex
//! patterns checked at load and compiled at most once, on first use.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::OnceLock;

use agent_safe_core::Params;
use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::Value;

use crate::model::{ActionDefinition, ParamType, Parameter};
use crate::python_repr;

/// The largest compiled size of a `pattern`, in bytes (the `regex` crate's default); bigger
/// patterns are a load error. `\w{1,63}` fits; `\w{1,255}` (Unicode classes are large) does not.
const PATTERN_SIZE_LIMIT: usize = 10 << 20;

/// Patterns whose estimated size (see [`estimate`]) is above this are compiled at load, so
/// that one too large for [`PATTERN_SIZE_LIMIT`] is a load error. Every pattern of the
/// catalog estimates below 10,000; the limit is reached around 300,000 states, so even an
/// estimate wrong by a factor of ten cannot let a too-large pattern through to first use.
const EAGER_COMPILE_ESTIMATE: u64 = 20_000;

/// A `pattern` constraint for whole-string matching (Python's `re.fullmatch`).
///
/// Loading checks the syntax (cheap) and compiles only patterns that may be large; the
/// others are compiled on first use. Compiling a regex costs far more than parsing one, and a
/// process such as `agent-safe check` uses the patterns of one action out of dozens.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// `\A(?:pattern)\z`.
    anchored: String,
    compiled: OnceLock<Result<Regex, String>>,
}

impl Pattern {
    /// Checks `pattern`; the error is a one-line description.
    ///
    /// The pattern is first parsed on its own, so that unbalanced groups (`a)|(b`) are an
    /// error instead of escaping the `\A(?:…)\z` wrapper; then, if it has a `#`, the wrapped
    /// text is parsed (a `(?x)` comment runs to the end of the line and could swallow the
    /// wrapper's closing parenthesis).
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        let hir = parse(pattern)?;
        let anchored = format!(r"\A(?:{pattern})\z");
        if pattern.contains('#') {
            parse(&anchored)?;
        }
        let this = Self { anchored, compiled: OnceLock::new() };
        if estimate(&hir) > EAGER_COMPILE_ESTIMATE {
            this.regex()?;
        }
        Ok(this)
    }

    /// The anchored text, `\\A(?:pattern)\\z`.
    #[cfg(test)]
    pub(crate) fn anchored(&self) -> &str {
        &self.anchored
    }

    /// Whether the pattern has been compiled yet.
    #[cfg(test)]
    pub(crate) fn is_compiled(&self) -> bool {
        self.compiled.get().is_some()
    }

    /// The compiled pattern (compiled now if this is the first use).
    pub(crate) fn regex(&self) -> Result<&Regex, String> {
        self.compiled
            .get_or_init(|| {
                RegexBuilder::new(&self.anchored)
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .build()
                    .map_err(|e| describe_regex_error(&e))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether `text` matches the whole pattern; a pattern that cannot be compiled matches
    /// nothing (it cannot happen for a loaded registry: see [`EAGER_COMPILE_ESTIMATE`]).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.regex().is_ok_and(|regex| regex.is_match(text))
    }
}

/// Parses `pattern` with the same parser and defaults as the `regex` crate.
pub(crate) fn parse(pattern: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|e| describe_syntax_error(&e.to_string()))
}

/// A rough upper estimate of the compiled size of `hir`, in NFA states: literals count their
/// bytes, classes four states per range (UTF-8 sequences), repetitions multiply.
pub(crate) fn estimate(hir: &Hir) -> u64 {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => 1,
        HirKind::Literal(literal) => count(literal.0.len()),
        HirKind::Class(Class::Unicode(class)) => 4 * count(class.ranges().len()) + 1,
        HirKind::Class(Class::Bytes(class)) => count(class.ranges().len()) + 1,
        HirKind::Repetition(rep) => {
            let copies = u64::from(rep.max.unwrap_or(rep.min).max(rep.min)) + 1;
            estimate(&rep.sub).saturating_mul(copies)
        }
        HirKind::Capture(capture) => estimate(&capture.sub).saturating_add(2),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            subs.iter().map(estimate).fold(1, u64::saturating_add)
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn describe_syntax_error(text: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix("error: "))
        .or_else(|| text.lines().last())
        .unwrap_or("invalid syntax")
        .to_owned()
}

fn describe_regex_error(err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(text) => describe_syntax_error(text),
        regex::Error::CompiledTooBig(limit) => format!(
            "the compiled pattern is larger than the limit of {limit} bytes (a Unicode class \
             such as `\\w` repeated many times is large; an ASCII class such as \
             `[A-Za-z0-9_]` is not)"
        ),
        other => other.to_string(),
    }
}

/// SPEC §1.3 steps 2–5. `patterns[i]` is the compiled pattern of `action.parameters[i]`;
/// `declared` holds the names of `action.parameters`.
pub(crate) fn validate_params(
    action: &ActionDefinition,
    patterns: &[Option<Pattern>],
    declared: &HashSet<String>,
    params: &Params,
) -> Vec<String> {
    let mut errors = Vec::new();
    // 2. Missing required parameters, in declaration order.
    for param in &action.parameters {
        if param.required && !params.contains_key(&param.name) {
            errors.push(format!("Missing required parameter: {}", param.name));
        }
    }
    // 3. Unknown parameters, in the request's key order.
    for key in params.keys() {
        if !declared.contains(key) {
            errors.push(format!("Unknown parameter: {key}"));
        }
    }
    // 4–5. Type, then constraints, for each declared parameter that is present.
    for (index, param) in action.parameters.iter().enumerate() {
        if let Some(value) = params.get(&param.name) {
            let pattern = patterns.get(index).and_then(Option::as_ref);
            check_value(param, pattern, value, &mut errors);
        }
    }
    errors
}

fn type_matches(kind: ParamType, value: &Value) -> bool {
    match kind {
        ParamType::String => value.is_string(),
        ParamType::Integer => value.is_i64() || value.is_u64(),
        ParamType::Number => value.is_number(),
        ParamType::Boolean => value.is_boolean(),
        ParamType::Array => value.is_array(),
    }
}

fn check_value(
    param: &Parameter,
    pattern: Option<&Pattern>,
    value: &Value,
    errors: &mut Vec<String>,
) {
    let name = &param.name;
    if !type_matches(param.kind, value) {
        errors.push(format!(
            "Parameter '{name}': expected {}, got {}",
            param.kind.as_str(),
            python_repr::type_name(value)
        ));
        return;
    }
    let Some(c) = &param.constraints else {
        return;
    };
    // Python's `isinstance(value, (int, float))` also holds for bools: cmp_number does that.
    if let Some(min) = c.min_value
        && python_repr::cmp_number(value, min) == Some(Ordering::Less)
    {
        errors.push(format!(
            "Parameter '{name}': value {} is below minimum {}",
            python_repr::str(value),
            python_repr::float(min)
        ));
    }
    if let Some(max) = c.max_value
        && python_repr::cmp_number(value, max) == Some(Ordering::Greater)
    {
        errors.push(format!(
            "Parameter '{name}': value {} exceeds maximum {}",
            python_repr::str(value),
            python_repr::float(max)
        ));
    }
    if let Value::String(text) = value {
        // Python's len() counts code points.
        let len = u64::try_from(text.chars().count()).unwrap_or(u64::MAX);
        if let Some(min) = c.min_length
            && len < min
        {
            errors.push(format!("Parameter '{name}': length {len} is below minimum {min}"));
        }
        if let Some(max) = c.max_length
            && len > max
        {
            errors.push(format!("Parameter '{name}': length {len} exceeds maximum {max}"));
        }
        if let (Some(source), Some(pattern)) = (&c.pattern, pattern) {
            match pattern.regex() {
                Ok(regex) if regex.is_match(text) => {}
                Ok(_) => errors
                    .push(format!("Parameter '{name}': value does not match pattern '{source}'")),
                // Unreachable for a loaded registry (large patterns are compiled at load);
                // kept fail-closed.
                Err(why) => errors.push(format!(
                    "Parameter '{name}': pattern '{source}' cannot be compiled: {why}"
                )),
            }
        }
    }
    if let Some(allowed) = &c.allowed {
        let text = python_repr::str(value);
        if !allowed.contains(&text) {
            errors.push(format!(
                "Parameter '{name}': value '{text}' not in allowed values {}",
                python_repr::str_list(allowed)
            ));
        }
    }
}

#[cfg(test)]
mod tests;
