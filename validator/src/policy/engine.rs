//! The policy engine: per-rule settings from the configuration, the per-object pass and the
//! whole-set pass, and the one place findings are made (severity, help, exemption).

use crate::finding::{Finding, Severity};
use crate::object::Object;

use super::catalog::Catalog;
use super::config::PolicyConfig;
use super::exempt::{self, Exempter};
use super::index::SetIndex;
use super::rules::{Check, RULES, Subject};
use super::workload::Workload;

#[derive(Debug, Clone)]
struct Setting {
    enabled: bool,
    /// Raised by the engine itself: never configured, never exempted.
    engine: bool,
    /// The catalog's severity.
    default: Severity,
    /// The configuration's override.
    forced: Option<Severity>,
    /// How to fix it, from the catalog.
    help: std::sync::Arc<str>,
}

/// Runs the rule catalog over objects. Build one per run; share it across threads.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    /// Parallel to [`RULES`].
    settings: Vec<Setting>,
    exempter: Exempter,
}

impl Default for PolicyEngine {
    fn default() -> PolicyEngine {
        PolicyEngine::new(&PolicyConfig::default())
    }
}

impl PolicyEngine {
    /// An engine with the configuration's settings and exemptions.
    pub fn new(config: &PolicyConfig) -> PolicyEngine {
        let catalog = Catalog::builtin();
        let settings = RULES
            .iter()
            .map(|r| {
                let doc = catalog.rule(r.id);
                let setting = config.rule(r.id);
                let engine_rule = matches!(r.check, Check::Engine);
                Setting {
                    enabled: engine_rule || setting.enabled.unwrap_or(true),
                    engine: engine_rule,
                    default: doc.map_or(Severity::Warning, |d| d.severity),
                    forced: if engine_rule { None } else { setting.severity },
                    help: doc
                        .map_or_else(String::new, |d| {
                            format!(
                                "{} (`tally policies explain {}`)",
                                d.remediation.trim(),
                                r.id
                            )
                        })
                        .into(),
                }
            })
            .collect();
        PolicyEngine {
            settings,
            exempter: Exempter::new(
                config.exemptions.clone(),
                config.file.as_deref(),
                config.base_dir.as_deref(),
            ),
        }
    }

    /// Indexes the whole set for cross-object rules: one cheap pass, before the per-object pass.
    pub fn index(&self, objects: &[Object]) -> SetIndex {
        SetIndex::build(objects)
    }

    /// Runs the per-object rules on one object. `index` is the whole set's.
    pub fn check_object(&self, obj: &Object, index: &SetIndex) -> Vec<Finding> {
        let mut out = Out::new(self);
        exempt::check_annotations(obj, &mut out);
        exempt::check_ignore_fields(obj, &mut out);
        let subject = Subject {
            obj,
            workload: Workload::of(obj),
            index,
        };
        for (rule, setting) in RULES.iter().zip(&self.settings) {
            if let (Check::Object(check), true) = (&rule.check, setting.enabled) {
                check(&subject, &mut out);
            }
        }
        out.findings
    }

    /// Runs the rules that judge the set as a whole (namespaces' guardrails).
    pub fn check_set(&self, index: &SetIndex) -> Vec<Finding> {
        let mut out = Out::new(self);
        for (rule, setting) in RULES.iter().zip(&self.settings) {
            if let (Check::Set(check), true) = (&rule.check, setting.enabled) {
                check(index, &mut out);
            }
        }
        out.findings
    }

    /// Everything at once, sequentially: index, per-object rules, set rules. The gate runs the
    /// same steps with the per-object pass in parallel.
    pub fn check(&self, objects: &[Object]) -> Vec<Finding> {
        let index = self.index(objects);
        let mut findings: Vec<Finding> = objects
            .iter()
            .flat_map(|o| self.check_object(o, &index))
            .collect();
        findings.extend(self.check_set(&index));
        findings
    }

    fn setting(&self, rule: &str) -> Option<&Setting> {
        // Rules report with the same `&'static str` the registry holds: compare addresses first.
        let i = RULES
            .iter()
            .position(|r| std::ptr::eq(r.id, rule))
            .or_else(|| RULES.iter().position(|r| r.id == rule))?;
        self.settings.get(i)
    }
}

/// Where rules put their findings.
pub(crate) struct Out<'e> {
    engine: &'e PolicyEngine,
    findings: Vec<Finding>,
}

impl<'e> Out<'e> {
    fn new(engine: &'e PolicyEngine) -> Out<'e> {
        Out {
            engine,
            findings: Vec::new(),
        }
    }

    /// Reports a finding of `rule` at `pointer` in `obj`, with the rule's severity.
    pub(crate) fn report(
        &mut self,
        rule: &'static str,
        obj: &Object,
        pointer: &str,
        message: impl Into<String>,
    ) {
        self.push(rule, None, obj, pointer, message.into(), true);
    }

    /// Reports at the value of `pointer` rather than its key: for a problem inside the text of
    /// a value (a template left in it), the column where the value starts.
    pub(crate) fn report_value(
        &mut self,
        rule: &'static str,
        obj: &Object,
        pointer: &str,
        message: impl Into<String>,
    ) {
        let before = self.findings.len();
        self.push(rule, None, obj, pointer, message.into(), true);
        let located = obj.positions.locate(pointer);
        if let Some(f) = self.findings.get_mut(before)
            && located.exact
            && obj.origin_of(pointer).is_none()
        {
            f.pos = located.value;
        }
    }

    /// Reports with a severity of the rule's own choosing for this case (a milder variant); a
    /// configured severity still wins.
    pub(crate) fn report_as(
        &mut self,
        rule: &'static str,
        severity: Severity,
        obj: &Object,
        pointer: &str,
        message: impl Into<String>,
    ) {
        self.push(rule, Some(severity), obj, pointer, message.into(), true);
    }

    /// Reports a finding about a namespace, anchored on `obj`. The anchor's own exemption
    /// annotation counts only when it is the Namespace object itself.
    pub(crate) fn report_namespace(
        &mut self,
        rule: &'static str,
        anchor: &Object,
        pointer: &str,
        message: impl Into<String>,
    ) {
        let is_namespace = anchor.id.kind == "Namespace" && anchor.id.group().is_empty();
        self.push(rule, None, anchor, pointer, message.into(), is_namespace);
    }

    fn push(
        &mut self,
        rule: &'static str,
        severity: Option<Severity>,
        obj: &Object,
        pointer: &str,
        message: String,
        annotation_ok: bool,
    ) {
        let Some(setting) = self.engine.setting(rule) else {
            debug_assert!(false, "rule {rule} is not registered");
            return;
        };
        if !setting.enabled {
            return;
        }
        let severity = setting.forced.or(severity).unwrap_or(setting.default);
        // A field set from another file (an `Origin`, such as an override) is reported there.
        let (file, pos) = match obj.origin_of(pointer) {
            Some(origin) => (&origin.file, origin.pos),
            None => (&obj.provenance.file, obj.pos(pointer)),
        };
        let mut finding =
            Finding::new(rule, severity, file, pos, message).with_object(obj.id.clone());
        if !setting.help.is_empty() {
            finding.help = Some(setting.help.clone());
        }
        if !setting.engine {
            finding.exempted = self.engine.exempter.exemption(rule, obj, annotation_ok);
        }
        self.findings.push(finding);
    }
}
