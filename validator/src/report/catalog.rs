//! What reports say about a rule itself, as opposed to one finding of it: a title and, where
//! there is one general fix, help. SARIF's rule descriptors are built from this.
//!
//! The gate's own rules are listed here, their ids taken from the modules that raise them so a
//! renamed rule cannot drift from its entry; policy rules come from the policy catalog
//! (`policies/catalog.yaml`). Rules raised by a caller of the gate are documented by that caller,
//! which hands the docs to reports in [`GateReport::rule_docs`](crate::gate::GateReport::rule_docs)
//! (see [`describe_in`]). Anything else gets a title made from its id.

use crate::{manifest, schema, source, unit, yaml};

pub use crate::finding::RuleDoc;

const fn doc(id: &'static str, title: &'static str, help: Option<&'static str>) -> RuleDoc {
    RuleDoc::new(id, title, help)
}

const RULES: &[RuleDoc] = &[
    doc(
        source::rules::ENCODING,
        "The file is not UTF-8 text.",
        Some("Save the file as UTF-8 (without a byte-order mark if possible)."),
    ),
    doc(
        source::rules::BINARY,
        "A binary file where manifests were expected.",
        Some("Move the file out of the manifest directories or list it in .tallyignore."),
    ),
    doc(
        source::rules::UNREADABLE,
        "A file that cannot be read: a dangling or looping symbolic link, no permission, or not a regular file (a FIFO, a device, a socket).",
        Some(
            "Fix or remove the link, make the file readable, or exclude the path (--exclude, .tallyignore); the other files are checked either way.",
        ),
    ),
    doc(
        yaml::rules::LIMIT,
        "A file crosses one of the gate's budgets (file size, input size, documents per file, nesting depth, alias expansion); the file, or the rest of it, was not read.",
        Some(
            "Split the file or simplify it; a limit that real files cross can be raised: --max-file-size, --max-input-size, --max-documents, --max-depth (lower only).",
        ),
    ),
    doc(
        crate::manifest::rules::TOO_LARGE,
        "An object larger than the API server stores (1.5 MiB as JSON, etcd's request limit).",
        Some("Move large data out of the object (a volume, an image, several ConfigMaps)."),
    ),
    doc(
        crate::manifest::rules::EMPTY_FILE,
        "A file with no document: empty, or only comments.",
        Some("Remove the file if it is a leftover, or list it in .tallyignore."),
    ),
    doc(
        yaml::rules::UNKNOWN_TAG,
        "A YAML tag no Kubernetes reader resolves (`!Ref`, `!!python/object`).",
        Some(
            "Remove the tag; render the file with the tool it belongs to first if it is a template of another tool.",
        ),
    ),
    doc(yaml::rules::SYNTAX, "The YAML does not parse.", None),
    doc(
        yaml::rules::TAB,
        "A tab character in indentation.",
        Some("Indent with spaces; YAML does not allow tabs in indentation."),
    ),
    doc(
        yaml::rules::DUPLICATE_KEY,
        "The same key twice in one mapping.",
        Some("Keep one of the two keys; the API server rejects duplicate fields."),
    ),
    doc(
        yaml::rules::COMPLEX_KEY,
        "A mapping or sequence used as a mapping key.",
        Some("Kubernetes objects have string keys only."),
    ),
    doc(
        yaml::rules::AMBIGUOUS_BOOL,
        "A plain yes/no/on/off/y/n that YAML 1.1 reads as a boolean.",
        Some("Quote the value if a string is meant, or write true/false."),
    ),
    doc(
        yaml::rules::AMBIGUOUS_NUMBER,
        "A number that YAML 1.1 and YAML 1.2 read differently.",
        Some(
            "Quote the value, or write the number without leading zeros, prefixes or underscores.",
        ),
    ),
    doc(
        yaml::rules::UNREPRESENTABLE,
        "A value JSON cannot carry, or an alias expansion too large.",
        None,
    ),
    doc(
        unit::rules::NOT_RENDERED,
        "A template (a Helm chart, a kustomization, a file of `{{name}}` placeholders) that was \
         not rendered, so its objects were not checked.",
        Some(
            "Install helm (charts) or kustomize or kubectl (kustomizations) where tally runs, or \
             fix the error the tool printed; check a placeholder template's rendered output.",
        ),
    ),
    doc(
        manifest::rules::NOT_OBJECT,
        "A document that is not a Kubernetes object.",
        Some("Each document must be a mapping with apiVersion, kind and metadata."),
    ),
    doc(
        manifest::rules::MISSING_API_VERSION,
        "An object without apiVersion.",
        None,
    ),
    doc(
        manifest::rules::MISSING_KIND,
        "An object without kind.",
        None,
    ),
    doc(
        manifest::rules::MISSING_NAME,
        "An object without metadata.name.",
        None,
    ),
    doc(
        schema::rules::UNKNOWN_FIELD,
        "A field the Kubernetes schema does not know.",
        Some("Remove the field or correct its name; the API server rejects unknown fields."),
    ),
    doc(
        schema::rules::INVALID,
        "A value the Kubernetes schema does not allow.",
        None,
    ),
    doc(
        schema::rules::MISSING,
        "No schema for the object's kind.",
        Some("Pass the CRD with --crd, or a schema directory with --schema-location."),
    ),
    doc(
        schema::rules::REMOVED_API,
        "An apiVersion the chosen Kubernetes version no longer serves.",
        Some("Move the object to the replacement apiVersion."),
    ),
    doc(
        schema::rules::DEPRECATED_API,
        "An apiVersion deprecated in the chosen Kubernetes version.",
        Some("Move the object to the replacement apiVersion before it is removed."),
    ),
    doc(
        schema::rules::BAD_CRD,
        "A CustomResourceDefinition whose schema cannot be used.",
        None,
    ),
];

/// The catalog entry for one of the gate's own rules (or a policy), if there is one.
pub fn describe(id: &str) -> Option<RuleDoc> {
    if let Some(doc) = RULES.iter().find(|r| r.id == id) {
        return Some(*doc);
    }
    let rule = crate::policy::Catalog::builtin().rule(id)?;
    Some(RuleDoc {
        id: &rule.id,
        title: &rule.title,
        help: Some(&rule.remediation),
    })
}

/// The entry for a rule id in `docs` (a report's [`rule_docs`](crate::gate::GateReport::rule_docs)),
/// else in the gate's own catalog.
pub fn describe_in(docs: &[RuleDoc], id: &str) -> Option<RuleDoc> {
    match docs.iter().find(|r| r.id == id) {
        Some(doc) => Some(*doc),
        None => describe(id),
    }
}

/// A rule's one-line title: the catalog's, or its id in words.
pub fn title(id: &str) -> String {
    title_in(&[], id)
}

/// A rule's one-line title: from `docs` (see [`describe_in`]), the catalog, or its id in words.
pub fn title_in(docs: &[RuleDoc], id: &str) -> String {
    match describe_in(docs, id) {
        Some(d) => d.title.trim_end_matches('.').to_owned() + ".",
        None => {
            let mut words = id.replace(['-', '_'], " ");
            if let Some(first) = words.get(..1) {
                let upper = first.to_ascii_uppercase();
                words.replace_range(..1, &upper);
            }
            words
        }
    }
}

/// `schema-unknown-field` → `SchemaUnknownField` (SARIF's `name` is an identifier).
pub fn camel_name(id: &str) -> String {
    id.split(['-', '_', '.'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        for (i, a) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|b| b.id != a.id), "{}", a.id);
        }
    }

    #[test]
    fn unknown_rules_get_a_title_from_their_id() {
        assert_eq!(title("made-up-rule"), "Made up rule");
        assert_eq!(
            title("no-latest-tag"),
            "Images are pinned to a version or a digest."
        );
        assert_eq!(title(yaml::rules::TAB), "A tab character in indentation.");
        assert_eq!(camel_name("schema-unknown-field"), "SchemaUnknownField");
    }

    #[test]
    fn a_callers_docs_come_before_the_catalog() {
        let docs = [
            RuleDoc::new("made-up-rule", "A rule of the caller's.", Some("Fix it.")),
            RuleDoc::new(yaml::rules::TAB, "Shadowed.", None),
        ];
        assert_eq!(describe_in(&docs, "made-up-rule"), Some(docs[0]));
        assert_eq!(title_in(&docs, "made-up-rule"), "A rule of the caller's.");
        assert_eq!(title_in(&docs, yaml::rules::TAB), "Shadowed.");
        assert_eq!(title_in(&docs, "other-rule"), "Other rule");
        assert_eq!(
            describe_in(&[], yaml::rules::TAB),
            describe(yaml::rules::TAB)
        );
        assert_eq!(describe("made-up-rule"), None);
    }
}
