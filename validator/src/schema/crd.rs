//! CustomResourceDefinitions to JSON schemas.
//!
//! The API server validates a custom resource against the CRD's structural OpenAPI v3 schema and,
//! with strict field validation, rejects fields the schema does not declare. The conversion here
//! makes a JSON Schema (draft 2020-12) that says the same: objects that declare `properties`
//! (or are plain `type: object`) refuse other fields unless they preserve unknown fields, and the
//! Kubernetes extensions (`nullable`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource`) become plain JSON Schema.

use serde_json::{Map, Value, json};

use super::embedded::{DEFINITIONS_URI, OBJECT_META};
use crate::object::Object;
use crate::position::escape_segment;

/// The apiVersion and kind of the CRDs tally reads.
pub(super) const CRD_API_VERSION: &str = "apiextensions.k8s.io/v1";
/// The kind of a CustomResourceDefinition.
pub(super) const CRD_KIND: &str = "CustomResourceDefinition";

/// One served version of a CRD, ready to compile.
#[derive(Debug)]
pub(super) struct CrdVersion {
    /// `group/version`.
    pub api_version: String,
    /// The custom resource's kind.
    pub kind: String,
    /// The converted schema (with a `$id`).
    pub schema: Value,
    /// Pointer, inside the CRD object, of the `openAPIV3Schema` it came from (or of the version
    /// when it has none).
    pub pointer: String,
    /// Set when the version has no schema: the API server refuses such a CRD.
    pub problem: Option<String>,
}

/// Whether an object is a CRD tally turns into schemas.
pub(crate) fn is_crd(object: &Object) -> bool {
    object.id.kind == CRD_KIND && object.id.api_version == CRD_API_VERSION
}

/// The served versions of a CRD with their converted schemas. CRDs too broken to name a group
/// and kind give nothing; their own schema validation reports why.
pub(super) fn versions(crd: &Object) -> Vec<CrdVersion> {
    let spec = crd.value.get("spec");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let group = text(spec.and_then(|s| s.get("group")));
    let kind = text(spec.and_then(|s| s.pointer("/names/kind")));
    let Some(versions) = spec
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    if group.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let name = text(version.get("name"));
        if name.is_empty() || version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let api_version = format!("{group}/{name}");
        let id = format!(
            "https://crd.tally.invalid/{}/{}/{}.json",
            escape_segment(&group),
            escape_segment(&name),
            escape_segment(&kind)
        );
        let (schema, pointer, problem) = match version.pointer("/schema/openAPIV3Schema") {
            Some(source) => (
                root_schema(source, &id),
                format!("/spec/versions/{i}/schema/openAPIV3Schema"),
                None,
            ),
            None => (
                root_schema(&json!({"x-kubernetes-preserve-unknown-fields": true}), &id),
                format!("/spec/versions/{i}"),
                Some(format!(
                    "version `{name}` of `{kind}` has no `schema.openAPIV3Schema`; the API server requires one"
                )),
            ),
        };
        out.push(CrdVersion {
            api_version,
            kind: kind.clone(),
            schema,
            pointer,
            problem,
        });
    }
    out
}

/// The schema of a whole custom resource: the CRD's, plus `apiVersion`, `kind` and `metadata`
/// (checked as ObjectMeta), which every object has and no CRD declares.
pub(super) fn root_schema(source: &Value, id: &str) -> Value {
    let mut root = match convert(source, false) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    add_object_fields(&mut root, false);
    root.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root.insert("$id".into(), Value::String(id.to_owned()));
    Value::Object(root)
}

/// Declares `apiVersion`, `kind` and `metadata` on an object schema; `required` makes the first
/// two mandatory (embedded resources).
fn add_object_fields(schema: &mut Map<String, Value>, required: bool) {
    let properties = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(properties) = properties {
        properties.insert("apiVersion".into(), json!({"type": "string"}));
        properties.insert("kind".into(), json!({"type": "string"}));
        properties.insert(
            "metadata".into(),
            json!({"$ref": format!("{DEFINITIONS_URI}#/$defs/{OBJECT_META}")}),
        );
    }
    if required {
        let list = schema
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            for field in ["apiVersion", "kind"] {
                if !list.iter().any(|v| v == field) {
                    list.push(json!(field));
                }
            }
        }
    }
    strict_unless_preserved(schema);
}

/// `additionalProperties: false` on an object schema that does not preserve unknown fields and
/// says nothing about other fields (what the API server prunes, strict validation rejects).
fn strict_unless_preserved(schema: &mut Map<String, Value>) {
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if !preserve && !schema.contains_key("additionalProperties") {
        schema.insert("additionalProperties".into(), Value::Bool(false));
    }
}

/// Converts one OpenAPI v3 (Kubernetes structural) schema node. `in_junctor` is set inside
/// `allOf`/`anyOf`/`oneOf`/`not`, where the API server does not prune, so no strictness is added.
fn convert(schema: &Value, in_junctor: bool) -> Value {
    let Value::Object(source) = schema else {
        return schema.clone();
    };
    let flag = |key: &str| source.get(key).and_then(Value::as_bool) == Some(true);
    let int_or_string = flag("x-kubernetes-int-or-string");
    let mut out = Map::new();
    for (key, value) in source {
        match key.as_str() {
            "properties" | "patternProperties" => {
                let converted = match value {
                    Value::Object(props) => Value::Object(
                        props
                            .iter()
                            .map(|(name, sub)| (name.clone(), convert(sub, false)))
                            .collect(),
                    ),
                    other => other.clone(),
                };
                out.insert(key.clone(), converted);
            }
            "items" | "additionalProperties" | "additionalItems" => {
                let converted = match value {
                    Value::Array(list) => list.iter().map(|s| convert(s, false)).collect(),
                    other => convert(other, false),
                };
                out.insert(key.clone(), converted);
            }
            "allOf" | "anyOf" | "oneOf" => {
                // An int-or-string's `anyOf: [{type: integer}, {type: string}]` is what its type
                // union below says; keeping it would only add a second, noisier error.
                if int_or_string && is_type_only_junction(value) {
                    continue;
                }
                let converted = match value {
                    Value::Array(list) => list.iter().map(|s| convert(s, true)).collect(),
                    other => other.clone(),
                };
                out.insert(key.clone(), converted);
            }
            "not" => {
                out.insert(key.clone(), convert(value, true));
            }
            // OpenAPI v3.0 booleans become draft 2020-12 numbers.
            "exclusiveMaximum" | "exclusiveMinimum" => match value {
                Value::Bool(true) => {
                    let bound = if key == "exclusiveMaximum" {
                        "maximum"
                    } else {
                        "minimum"
                    };
                    if let Some(limit) = source.get(bound) {
                        out.insert(key.clone(), limit.clone());
                    }
                }
                Value::Bool(false) => {}
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            "maximum" | "minimum" => {
                let exclusive = if key == "maximum" {
                    "exclusiveMaximum"
                } else {
                    "exclusiveMinimum"
                };
                if !flag(exclusive) {
                    out.insert(key.clone(), value.clone());
                }
            }
            // Checked by tally only when it means what JSON Schema means by it (`byte`); the rest
            // (`int32`, `date-time` variants, Go durations) differ between the two worlds.
            "format" => {
                if value == "byte" {
                    out.insert(key.clone(), value.clone());
                }
            }
            // Annotations, and keywords that would change meaning under draft 2020-12.
            "description" | "title" | "example" | "externalDocs" | "default" | "nullable"
            | "$schema" | "$id" | "id" | "definitions" | "dependencies" => {}
            // The API server rejects `$ref` in CRD schemas; following one would read files
            // the repo does not control.
            "$ref" | "$dynamicRef" => {}
            "x-kubernetes-preserve-unknown-fields" => {
                out.insert(key.clone(), value.clone());
            }
            k if k.starts_with("x-kubernetes-") => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if int_or_string {
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if flag("nullable") {
        make_nullable(&mut out);
    }
    if flag("x-kubernetes-embedded-resource") {
        add_object_fields(&mut out, true);
    } else if !in_junctor && is_object_schema(&out) {
        strict_unless_preserved(&mut out);
    }
    Value::Object(out)
}

/// Whether a schema describes an object whose fields are declared (or all pruned).
fn is_object_schema(schema: &Map<String, Value>) -> bool {
    schema.contains_key("properties") || schema.get("type").is_some_and(|t| t == "object")
}

fn is_type_only_junction(value: &Value) -> bool {
    value.as_array().is_some_and(|branches| {
        branches.iter().all(|b| {
            b.as_object()
                .is_some_and(|b| b.len() == 1 && b.contains_key("type"))
        })
    })
}

/// `nullable: true`: `null` is a valid value too.
fn make_nullable(schema: &mut Map<String, Value>) {
    match schema.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            schema.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => {
            types.push(json!("null"));
        }
        _ => {}
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.iter().any(Value::is_null)
    {
        values.push(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_become_strict_unless_they_preserve_unknown_fields() {
        let s = convert(
            &json!({
                "type": "object",
                "description": "x",
                "properties": {
                    "a": {"type": "object", "properties": {"b": {"type": "string"}}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "map": {"type": "object", "additionalProperties": {"type": "string"}},
                    "n": {"type": "integer", "nullable": true, "enum": [1, 2]},
                    "port": {"x-kubernetes-int-or-string": true,
                             "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "lim": {"type": "number", "maximum": 5, "exclusiveMaximum": true}
                }
            }),
            false,
        );
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(s["properties"]["a"]["additionalProperties"], json!(false));
        assert!(
            s["properties"]["free"]
                .get("additionalProperties")
                .is_none()
        );
        assert_eq!(
            s["properties"]["map"]["additionalProperties"],
            json!({"type": "string"})
        );
        assert_eq!(s["properties"]["n"]["type"], json!(["integer", "null"]));
        assert_eq!(s["properties"]["n"]["enum"], json!([1, 2, null]));
        assert_eq!(
            s["properties"]["port"],
            json!({"type": ["integer", "string"]})
        );
        assert_eq!(
            s["properties"]["lim"],
            json!({"type": "number", "exclusiveMaximum": 5})
        );
        assert!(s.get("description").is_none());
    }

    #[test]
    fn embedded_resources_and_the_root_get_object_fields() {
        let root = root_schema(
            &json!({"type": "object", "properties": {"tpl": {
                "type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true}}}),
            "https://crd.tally.invalid/g/v1/K.json",
        );
        assert!(
            root["properties"]["metadata"]["$ref"]
                .as_str()
                .unwrap()
                .ends_with("ObjectMeta")
        );
        assert_eq!(root["additionalProperties"], json!(false));
        let tpl = &root["properties"]["tpl"];
        assert_eq!(tpl["required"], json!(["apiVersion", "kind"]));
        assert!(tpl.get("additionalProperties").is_none());
    }
}
