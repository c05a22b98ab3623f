//! Reading an action's params. The registry has validated them against the action YAML
//! before a ticket was issued; these checks only make sure a malformed call becomes an ERROR
//! and never a panic or a request built from the wrong type.

use agent_safe_core::Params;
use serde_json::Value;

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

    /// An integer param that must fit `i32` (replica counts, percentages).
    pub(crate) fn int32(self, name: &str) -> Result<i32, StepError> {
        let n = self.int(name)?;
        i32::try_from(n).map_err(|_| invalid(format!("param `{name}` is out of range: `{n}`")))
    }

    /// An optional `i32` param.
    pub(crate) fn opt_int32(self, name: &str) -> Result<Option<i32>, StepError> {
        match self.opt_int(name)? {
            None => Ok(None),
            Some(_) => self.int32(name).map(Some),
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

fn invalid(message: String) -> StepError {
    StepError::Invalid(message)
}
