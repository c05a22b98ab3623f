//! Parameter validation (SPEC §1.3): the Python algorithm, order and messages, with regex
//! patterns compiled once at load.

use std::cmp::Ordering;
use std::collections::HashSet;

use agent_safe_core::Params;
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::model::{ActionDefinition, ParamType, Parameter};
use crate::python_repr;

/// The largest compiled size of a `pattern`, in bytes (the `regex` crate's default); bigger
/// patterns are a load error. `\w{1,63}` fits; `\w{1,255}` (Unicode classes are large) does not.
const PATTERN_SIZE_LIMIT: usize = 10 << 20;

/// Compiles a `pattern` constraint for whole-string matching (Python's `re.fullmatch`).
///
/// The pattern is first compiled on its own, so that unbalanced groups (`a)|(b`) are an
/// error instead of escaping the `\A(?:…)\z` wrapper. The error is a one-line description.
pub(crate) fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    let build = |text: &str| {
        RegexBuilder::new(text)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| describe_regex_error(&e))
    };
    build(pattern)?;
    build(&format!(r"\A(?:{pattern})\z"))
}

fn describe_regex_error(err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .or_else(|| text.lines().last())
            .unwrap_or("invalid syntax")
            .to_owned(),
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
    patterns: &[Option<Regex>],
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
    pattern: Option<&Regex>,
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
        if let (Some(source), Some(regex)) = (&c.pattern, pattern)
            && !regex.is_match(text)
        {
            errors.push(format!("Parameter '{name}': value does not match pattern '{source}'"));
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
