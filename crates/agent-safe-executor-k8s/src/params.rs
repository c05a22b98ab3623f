//! Reading an action's params. The registry has validated them against the action YAML
//! before a ticket was issued; these checks only make sure a malformed call becomes an ERROR
//! and never a panic or a request built from the wrong type.

use agent_safe_core::Params;
use agent_safe_k8s_actions::{Param, ParamReader};
use serde_json::{Map, Value};

use crate::error::StepError;

/// Typed access to one call's params.
#[derive(Debug, Clone, Copy)]
pub(crate) struct P<'a>(pub(crate) &'a Params);

impl<'a> P<'a> {
    /// A required string param.
    pub(crate) fn str(self, name: &str) -> Result<&'a str, StepError> {
        match self.0.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) => Err(invalid(format!("param `{name}` is empty"))),
            Some(other) => Err(invalid(format!("param `{name}` must be a string, got `{other}`"))),
            None => Err(invalid(format!("missing param `{name}`"))),
        }
    }

    /// An optional string param (`null` counts as absent).
    pub(crate) fn opt_str(self, name: &str) -> Result<Option<&'a str>, StepError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.str(name).map(Some),
        }
    }

    /// A required integer param.
    pub(crate) fn int(self, name: &str) -> Result<i64, StepError> {
        match self.0.get(name) {
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| invalid(format!("param `{name}` must be an integer, got `{n}`"))),
            Some(other) => {
                Err(invalid(format!("param `{name}` must be an integer, got `{other}`")))
            }
            None => Err(invalid(format!("missing param `{name}`"))),
        }
    }

    /// An optional integer param.
    pub(crate) fn opt_int(self, name: &str) -> Result<Option<i64>, StepError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.int(name).map(Some),
        }
    }

    /// An optional boolean param with a default.
    pub(crate) fn bool_or(self, name: &str, default: bool) -> Result<bool, StepError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(invalid(format!("param `{name}` must be a boolean, got `{other}`"))),
        }
    }
}

/// The typed parse of a call (`agent_safe_k8s_actions::Request::parse`) reads through these
/// checks: the right JSON types, names not empty (`update-configmap`'s `value` may be),
/// integers that fit the API's fields.
impl<'a> ParamReader<'a> for P<'a> {
    type Error = StepError;

    fn string(&self, param: Param) -> Result<&'a str, StepError> {
        if param != Param::Value {
            return self.str(param.name());
        }
        match self.0.get(param.name()) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(invalid(format!("param `{param}` must be a string, got `{other}`"))),
            None => Err(invalid(format!("missing param `{param}`"))),
        }
    }

    fn opt_string(&self, param: Param) -> Result<Option<&'a str>, StepError> {
        self.opt_str(param.name())
    }

    fn int(&self, param: Param) -> Result<i64, StepError> {
        P::int(*self, param.name())
    }

    fn opt_int(&self, param: Param) -> Result<Option<i64>, StepError> {
        P::opt_int(*self, param.name())
    }

    fn bool_or(&self, param: Param, default: bool) -> Result<bool, StepError> {
        P::bool_or(*self, param.name(), default)
    }

    fn json_object(&self, param: Param) -> Result<Map<String, Value>, StepError> {
        let text = self.str(param.name())?;
        match serde_json::from_str(text) {
            Ok(Value::Object(spec)) => Ok(spec),
            Ok(_) => Err(invalid(format!(
                "param `{param}` must be a JSON object (the NetworkPolicy spec)"
            ))),
            Err(e) => Err(invalid(format!("param `{param}` is not valid JSON: {e}"))),
        }
    }

    fn strings(&self, param: Param) -> Result<Vec<&'a str>, StepError> {
        let bad =
            |v: &Value| invalid(format!("param `{param}` must be a list of strings, got `{v}`"));
        match self.0.get(param.name()) {
            Some(Value::Array(items)) => {
                items.iter().map(|item| item.as_str().ok_or_else(|| bad(item))).collect()
            }
            Some(other) => Err(bad(other)),
            None => Err(invalid(format!("missing param `{param}`"))),
        }
    }

    fn out_of_range(&self, param: Param, value: i64) -> StepError {
        invalid(format!("param `{param}` is out of range: `{value}`"))
    }

    fn invalid(&self, message: &str) -> StepError {
        invalid(message.to_owned())
    }
}

fn invalid(message: String) -> StepError {
    StepError::Invalid(message)
}
