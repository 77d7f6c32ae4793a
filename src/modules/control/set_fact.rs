//! `set_fact`: give the host new variables for the rest of the run.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{ArgSpec, Module, Plan, StepCtx, StepError};

/// `set_fact`: variables for the host, from here on in the run (`cacheable` is accepted).
///
/// Returns: `ansible_facts` (the variables set).
///
/// Check mode: sets them as in a real run.
#[derive(Documented)]
pub struct SetFact;

#[async_trait]
impl Module for SetFact {
    fn name(&self) -> &'static str {
        "set_fact"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    fn free_keys(&self) -> bool {
        true
    }
    fn validate(&self, task: &crate::playbook::Task) -> crate::error::SResult<()> {
        if let Json::Object(m) = &task.args {
            for k in m.keys() {
                // A templated key is a name only once rendered (checked then).
                if !crate::playbook::is_identifier(k) && !crate::template::is_template(k) {
                    return Err(crate::error::SourceError::new(task.arg_span(k), format!("set_fact: '{k}' is not a valid variable name")));
                }
            }
        }
        Ok(())
    }
    async fn plan(&self, _ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        Ok(Plan::done(json!({ "ansible_facts": args })))
    }
}
