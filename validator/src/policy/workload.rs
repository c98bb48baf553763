//! The pod template inside a workload object, found once per object and shared by every pod-spec
//! rule: where the pod spec is, its labels, and its containers of all three kinds.
//!
//! Pointers are `&'static str` prefixes; a rule builds a full pointer only when it reports, so a
//! clean object costs no allocation here.

use serde_json::{Map, Value};

use crate::object::{Object, WorkloadKind};

/// The three container lists of a pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerList {
    Containers,
    Init,
    Ephemeral,
}

impl ContainerList {
    pub(crate) fn key(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::Init => "initContainers",
            ContainerList::Ephemeral => "ephemeralContainers",
        }
    }

    /// How messages name a container of this list.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            ContainerList::Containers => "container",
            ContainerList::Init => "init container",
            ContainerList::Ephemeral => "ephemeral container",
        }
    }
}

/// A workload's pod template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload<'a> {
    pub kind: WorkloadKind,
    /// The pod spec.
    pub spec: &'a Map<String, Value>,
    /// JSON pointer of the pod spec.
    pub spec_ptr: &'static str,
    /// JSON pointer of the pod (template) metadata.
    pub meta_ptr: &'static str,
    /// The pod (template) labels.
    pub labels: Option<&'a Map<String, Value>>,
    /// The three container lists, found once.
    lists: [&'a [Value]; 3],
}

impl<'a> Workload<'a> {
    /// The pod template of `obj`, when it is a workload with a pod spec.
    pub(crate) fn of(obj: &'a Object) -> Option<Workload<'a>> {
        let kind = WorkloadKind::of(obj)?;
        let (spec_ptr, meta_ptr) = kind.pointers();
        // Plain `get`s rather than `pointer`: this runs for every object.
        let mut template = &obj.value;
        for key in kind.template_path() {
            template = template.get(key)?;
        }
        let spec = template.get("spec")?.as_object()?;
        let labels = template
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        let list = |list: ContainerList| {
            spec.get(list.key())
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        Some(Workload {
            kind,
            spec,
            spec_ptr,
            meta_ptr,
            labels,
            lists: [
                list(ContainerList::Containers),
                list(ContainerList::Init),
                list(ContainerList::Ephemeral),
            ],
        })
    }

    /// Every container: regular, then init, then ephemeral.
    pub(crate) fn containers(&self) -> impl Iterator<Item = Container<'a>> + 'a {
        let spec_ptr = self.spec_ptr;
        [
            ContainerList::Containers,
            ContainerList::Init,
            ContainerList::Ephemeral,
        ]
        .into_iter()
        .zip(self.lists)
        .flat_map(move |(list, items)| {
            items.iter().enumerate().filter_map(move |(index, v)| {
                Some(Container {
                    list,
                    index,
                    value: v.as_object()?,
                    spec_ptr,
                })
            })
        })
    }

    /// Regular containers and init containers (the lists that can carry resources and probes).
    pub(crate) fn regular_and_init(&self) -> impl Iterator<Item = Container<'a>> + 'a {
        self.containers()
            .filter(|c| c.list != ContainerList::Ephemeral)
    }

    /// A pod-level field.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.spec.get(key)
    }

    /// A field of the pod's `securityContext`.
    pub(crate) fn pod_security(&self, key: &str) -> Option<&'a Value> {
        self.spec.get("securityContext")?.get(key)
    }

    /// A pointer under the pod spec.
    pub(crate) fn ptr(&self, suffix: &str) -> String {
        format!("{}{}", self.spec_ptr, suffix)
    }

    /// Whether the pod runs Windows, where Linux security settings do not apply (and the API
    /// server rejects some of them).
    pub(crate) fn is_windows(&self) -> bool {
        self.spec
            .get("os")
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str)
            == Some("windows")
    }

    /// Whether the pods run once rather than serve: Jobs, CronJobs and bare Pods whose
    /// `restartPolicy` is `Never` or `OnFailure`.
    pub(crate) fn runs_to_completion(&self) -> bool {
        self.kind.runs_to_completion()
            || (self.kind == WorkloadKind::Pod
                && matches!(
                    self.get("restartPolicy").and_then(Value::as_str),
                    Some("Never" | "OnFailure")
                ))
    }

    /// `volumes` of the pod spec with their indexes.
    pub(crate) fn volumes(&self) -> impl Iterator<Item = (usize, &'a Map<String, Value>)> + 'a {
        self.spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, v)| Some((i, v.as_object()?)))
    }
}

/// One container of a pod spec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Container<'a> {
    pub list: ContainerList,
    pub index: usize,
    pub value: &'a Map<String, Value>,
    spec_ptr: &'static str,
}

impl<'a> Container<'a> {
    /// Its name (empty when missing).
    pub(crate) fn name(&self) -> &'a str {
        self.value.get("name").and_then(Value::as_str).unwrap_or("")
    }

    /// A field of the container.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key)
    }

    /// A field of the container's `securityContext`.
    pub(crate) fn security(&self, key: &str) -> Option<&'a Value> {
        self.value.get("securityContext")?.get(key)
    }

    /// A pointer under this container (`suffix` starts with `/`, or is empty for the item).
    pub(crate) fn ptr(&self, suffix: &str) -> String {
        format!(
            "{}/{}/{}{}",
            self.spec_ptr,
            self.list.key(),
            self.index,
            suffix
        )
    }

    /// Where to point when something is missing from this container: its `name`.
    pub(crate) fn anchor(&self) -> String {
        if self.value.contains_key("name") {
            self.ptr("/name")
        } else {
            self.ptr("")
        }
    }

    /// Where to point when a `securityContext` field is missing: the `securityContext` key when
    /// there is one, else the container's name.
    pub(crate) fn security_anchor(&self) -> String {
        if self.value.contains_key("securityContext") {
            self.ptr("/securityContext")
        } else {
            self.anchor()
        }
    }

    /// `init container "migrate"`, for messages.
    pub(crate) fn describe(&self) -> String {
        format!("{} `{}`", self.list.noun(), self.name())
    }

    /// Whether this is an init container that keeps running beside the app (a native sidecar).
    pub(crate) fn is_sidecar(&self) -> bool {
        self.list == ContainerList::Init
            && self.get("restartPolicy").and_then(Value::as_str) == Some("Always")
    }
}
