//! Small builders for CloudFormation's JSON: intrinsic functions and the shared
//! shape of a template, so the generators read like the templates they make.

use serde_json::{json, Map, Value};

use super::GeneratedFile;

pub(crate) const TEMPLATE_VERSION: &str = "2010-09-09";
pub(crate) const POLICY_VERSION: &str = "2012-10-17";

pub(crate) fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

pub(crate) fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

/// `Fn::Sub`. Callers only interpolate validated names, which cannot hold `${`.
pub(crate) fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

pub(crate) fn condition_if(condition: &str, then: Value, otherwise: Value) -> Value {
    json!({ "Fn::If": [condition, then, otherwise] })
}

pub(crate) fn no_value() -> Value {
    reference("AWS::NoValue")
}

/// A condition that holds when a string parameter is not empty.
pub(crate) fn not_empty(parameter: &str) -> Value {
    json!({ "Fn::Not": [{ "Fn::Equals": [reference(parameter), ""] }] })
}

/// The parts of one template, assembled by [`Template::render`].
#[derive(Default)]
pub(crate) struct Template {
    pub description: String,
    pub parameters: Map<String, Value>,
    pub conditions: Map<String, Value>,
    pub resources: Map<String, Value>,
    pub outputs: Map<String, Value>,
}

impl Template {
    pub(crate) fn new(description: &str) -> Self {
        Template {
            description: description.to_string(),
            ..Default::default()
        }
    }

    pub(crate) fn output(&mut self, name: &str, description: &str, value: Value) {
        self.outputs.insert(
            name.to_string(),
            json!({ "Description": description, "Value": value }),
        );
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut template = Map::new();
        template.insert("AWSTemplateFormatVersion".into(), TEMPLATE_VERSION.into());
        template.insert("Description".into(), self.description.clone().into());
        // Empty sections are left out: CloudFormation rejects an empty Conditions map.
        for (key, section) in [
            ("Parameters", &self.parameters),
            ("Conditions", &self.conditions),
            ("Resources", &self.resources),
            ("Outputs", &self.outputs),
        ] {
            if !section.is_empty() {
                template.insert(key.into(), Value::Object(section.clone()));
            }
        }
        Value::Object(template)
    }

    pub(crate) fn render(&self, name: &str) -> GeneratedFile {
        file(name, &self.to_value())
    }
}

/// Pretty JSON with a final newline; keys come out sorted (serde_json's map).
pub(crate) fn file(name: &str, value: &Value) -> GeneratedFile {
    let mut contents =
        serde_json::to_string_pretty(value).expect("a serde_json::Value always serializes");
    contents.push('\n');
    GeneratedFile {
        name: name.to_string(),
        contents,
    }
}
