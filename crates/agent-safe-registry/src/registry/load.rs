//! Loading action files: parse, check each definition, then check references across files.

use std::collections::HashSet;
use std::collections::btree_map::Entry;
use std::fs;
use std::path::{Path, PathBuf};

use super::hints::ActionHints;
use super::{LoadError, RegisteredAction, Registry};
use crate::model::ActionDefinition;
use crate::suggest::did_you_mean;
use crate::validate::Pattern;
use crate::yaml::{self, Document, PathSegment, YamlError};

pub(super) fn load_dir(dir: &Path) -> Result<Registry, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::DirNotFound { dir: dir.to_owned() });
    }
    let read_dir_error = |source| LoadError::ReadDir { dir: dir.to_owned(), source };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let path = entry.map_err(read_dir_error)?.path();
        let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
        if (name.ends_with(b".yaml") || name.ends_with(b".yml")) && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let files = paths
        .into_iter()
        .map(|path| yaml::read_bytes(&path).map(|bytes| (path, bytes)))
        .collect::<Result<Vec<_>, YamlError>>()?;
    from_sources(files.iter().map(|(path, bytes)| (path.clone(), bytes.as_slice())))
}

pub(super) fn from_sources<'a>(
    sources: impl IntoIterator<Item = (PathBuf, &'a [u8])>,
) -> Result<Registry, LoadError> {
    let mut sources: Vec<(PathBuf, &'a [u8])> = sources.into_iter().collect();
    sources.sort_by(|a, b| a.0.cmp(&b.0));

    let texts = sources
        .iter()
        .map(|(path, bytes)| yaml::decode(path, bytes).map(|text| (path.as_path(), text, *bytes)))
        .collect::<Result<Vec<_>, YamlError>>()?;

    let mut registry = Registry::default();
    // The documents, in load order, for the cross-file checks' error positions.
    let mut loaded: Vec<(Document<'_>, String)> = Vec::with_capacity(texts.len());
    for (path, text, bytes) in texts {
        let doc = Document::parse(path, text)?;
        let definition: ActionDefinition = doc.deserialize(&ActionHints)?;
        let patterns = check_definition(&doc, &definition)?;
        let declared = definition.parameters.iter().map(|p| p.name.clone()).collect();
        let name = definition.name.clone();
        match registry.actions.entry(name.clone()) {
            Entry::Occupied(existing) => {
                return Err(LoadError::DuplicateName {
                    name,
                    first: existing.get().source.clone(),
                    second: path.to_owned(),
                    line: doc.line_of(&["name".into()]),
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(RegisteredAction {
                    definition,
                    sha256: agent_safe_core::hex::encode(&yaml::sha256(bytes)),
                    source: path.to_owned(),
                    patterns,
                    declared,
                });
            }
        }
        loaded.push((doc, name.into_string()));
    }
    for (doc, name) in &loaded {
        if let Some(action) = registry.get(name) {
            check_references(doc, action.definition(), &registry)?;
        }
    }
    Ok(registry)
}

/// Checks one definition on its own; returns the compiled patterns of its parameters.
fn check_definition(
    doc: &Document<'_>,
    def: &ActionDefinition,
) -> Result<Vec<Option<Pattern>>, YamlError> {
    let err = |at: &[PathSegment], message: String| YamlError::at(doc, at, message);
    let name = def.name.as_str();
    if !is_valid_name(name) {
        return Err(err(
            &["name".into()],
            format!(
                "invalid action name `{name}`; use lowercase letters, digits and `-`, \
                 starting with a letter (`^[a-z][a-z0-9-]*$`)"
            ),
        ));
    }
    if !is_valid_version(&def.version) {
        return Err(err(
            &["version".into()],
            format!(
                "invalid `version` `{}` in action `{name}`; expected `MAJOR.MINOR.PATCH`, \
                 e.g. `1.0.0` (quote it if YAML reads it as a number)",
                def.version
            ),
        ));
    }
    if def.target_types.is_empty() {
        return Err(err(
            &["target_types".into()],
            format!("`target_types` of action `{name}` is empty; list at least one target type"),
        ));
    }
    let mut patterns = Vec::with_capacity(def.parameters.len());
    let mut declared = HashSet::with_capacity(def.parameters.len());
    for (i, param) in def.parameters.iter().enumerate() {
        let at = |field: &str| -> Vec<PathSegment> {
            vec!["parameters".into(), i.into(), "constraints".into(), field.into()]
        };
        let pname = &param.name;
        if !declared.insert(pname.as_str()) {
            return Err(err(
                &["parameters".into(), i.into()],
                format!("duplicate parameter `{pname}` in action `{name}`"),
            ));
        }
        let Some(c) = &param.constraints else {
            patterns.push(None);
            continue;
        };
        for (field, bound) in [("min_value", c.min_value), ("max_value", c.max_value)] {
            if bound.is_some_and(f64::is_nan) {
                return Err(err(
                    &at(field),
                    format!("`{field}` of parameter `{pname}` in action `{name}` is NaN"),
                ));
            }
        }
        if let (Some(min), Some(max)) = (c.min_value, c.max_value)
            && min > max
        {
            return Err(err(
                &at("min_value"),
                format!(
                    "`min_value` ({min}) is greater than `max_value` ({max}) on parameter \
                         `{pname}` in action `{name}`"
                ),
            ));
        }
        if let (Some(min), Some(max)) = (c.min_length, c.max_length)
            && min > max
        {
            return Err(err(
                &at("min_length"),
                format!(
                    "`min_length` ({min}) is greater than `max_length` ({max}) on parameter \
                         `{pname}` in action `{name}`"
                ),
            ));
        }
        let compiled = match &c.pattern {
            None => None,
            Some(pattern) => Some(Pattern::new(pattern).map_err(|why| {
                err(
                    &at("pattern"),
                    format!(
                        "invalid `pattern` `{pattern}` on parameter `{pname}` in action \
                         `{name}`: {why} (patterns use Rust `regex` syntax, which has no \
                         look-around or backreferences)"
                    ),
                )
            })?),
        };
        patterns.push(compiled);
    }
    if let Some(credentials) = &def.credentials
        && credentials.ttl < 1
    {
        return Err(err(
            &["credentials".into(), "ttl".into()],
            format!("`credentials.ttl` of action `{name}` must be at least 1 second, got 0"),
        ));
    }
    for (key, source) in &def.rollback_params {
        let at: Vec<PathSegment> =
            vec!["rollback_params".into(), key.as_str().into(), "source".into()];
        let source = source.source.as_str();
        let field = match source.split_once('.') {
            Some(("params" | "before_state", field)) if !field.is_empty() => field,
            _ => {
                return Err(err(
                    &at,
                    format!(
                        "invalid source `{source}` for rollback param `{key}` in action \
                         `{name}`; expected `params.<parameter>` or `before_state.<field>`"
                    ),
                ));
            }
        };
        if source.starts_with("params.") && !declared.contains(field) {
            let hint = did_you_mean(field, def.parameters.iter().map(|p| p.name.as_str()))
                .map(|s| format!("; did you mean `params.{s}`?"))
                .unwrap_or_default();
            return Err(err(
                &at,
                format!(
                    "source `{source}` of rollback param `{key}` names no parameter of action \
                     `{name}`{hint}"
                ),
            ));
        }
    }
    Ok(patterns)
}

/// Checks that need the whole registry: `rollback_action` must be registered.
fn check_references(
    doc: &Document<'_>,
    def: &ActionDefinition,
    registry: &Registry,
) -> Result<(), YamlError> {
    if let Some(rollback) = &def.rollback_action
        && !registry.contains(rollback.as_str())
    {
        let others = registry.names().filter(|n| *n != def.name.as_str());
        let hint = did_you_mean(rollback.as_str(), others)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Err(YamlError::at(
            doc,
            &["rollback_action".into()],
            format!(
                "`rollback_action` `{rollback}` of action `{}` is not a registered \
                     action{hint}",
                def.name
            ),
        ));
    }
    Ok(())
}

/// `^[a-z][a-z0-9-]*$`
fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `^\d+\.\d+\.\d+$` (ASCII digits).
fn is_valid_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}
