//! Container security contexts: `privileged-container`, `privilege-escalation`,
//! `run-as-non-root`, `read-only-root-fs`, `seccomp-profile`, `dangerous-capabilities`.
//!
//! Pod-level settings apply to every container unless the container overrides them. Pods that
//! declare `spec.os.name: windows` are skipped by the Linux-only rules (the API server rejects
//! those fields there).

use serde_json::Value;

use crate::finding::Severity;
use crate::policy::engine::Out;
use crate::policy::workload::{Container, ContainerList};

use super::{
    DANGEROUS_CAPABILITIES, PRIVILEGE_ESCALATION, PRIVILEGED_CONTAINER, READ_ONLY_ROOT_FS,
    RUN_AS_NON_ROOT, SECCOMP_PROFILE, Subject,
};

fn flag(c: &Container<'_>, key: &str) -> Option<bool> {
    c.security(key).and_then(Value::as_bool)
}

/// `securityContext.privileged: true`.
pub(crate) fn privileged_container(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for c in w.containers() {
        if flag(&c, "privileged") == Some(true) {
            out.report(
                PRIVILEGED_CONTAINER,
                s.obj,
                &c.ptr("/securityContext/privileged"),
                format!(
                    "{} is privileged: it has every capability and the host's devices, so escaping it is trivial",
                    c.describe()
                ),
            );
        }
    }
}

/// Capabilities as written (`CAP_SYS_ADMIN`, `sys_admin`), normalized to `SYS_ADMIN`.
fn capability(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let s = s
        .strip_prefix("CAP_")
        .or_else(|| s.strip_prefix("cap_"))
        .unwrap_or(s);
    Some(s.to_ascii_uppercase())
}

fn caps<'a>(c: &Container<'a>, list: &str) -> impl Iterator<Item = (usize, String)> + 'a {
    c.security("capabilities")
        .and_then(|caps| caps.get(list))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| Some((i, capability(v)?)))
}

/// `allowPrivilegeEscalation` is not `false`.
pub(crate) fn privilege_escalation(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    if w.is_windows() {
        return;
    }
    for c in w.containers() {
        match flag(&c, "allowPrivilegeEscalation") {
            Some(false) => {}
            Some(true) => out.report(
                PRIVILEGE_ESCALATION,
                s.obj,
                &c.ptr("/securityContext/allowPrivilegeEscalation"),
                format!(
                    "{} allows privilege escalation: setuid binaries in it can gain more privileges than its process",
                    c.describe()
                ),
            ),
            None => {
                // The API server refuses `false` beside these; the other rules report them.
                let privileged = flag(&c, "privileged") == Some(true);
                let sys_admin = caps(&c, "add").any(|(_, cap)| cap == "SYS_ADMIN");
                if privileged || sys_admin {
                    continue;
                }
                out.report(
                    PRIVILEGE_ESCALATION,
                    s.obj,
                    &c.security_anchor(),
                    format!(
                        "{} does not set `allowPrivilegeEscalation: false`; by default setuid binaries can gain more privileges than its process",
                        c.describe()
                    ),
                );
            }
        }
    }
}

/// Neither `runAsNonRoot: true` nor a non-zero `runAsUser`, at the container or the pod level.
pub(crate) fn run_as_non_root(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    if w.is_windows() {
        return;
    }
    for c in w.containers() {
        let container_user = c.security("runAsUser").and_then(Value::as_i64);
        let pod_user = w.pod_security("runAsUser").and_then(Value::as_i64);
        let user = container_user.or(pod_user);
        let non_root = flag(&c, "runAsNonRoot")
            .or_else(|| w.pod_security("runAsNonRoot").and_then(Value::as_bool));
        if user == Some(0) {
            let at = if container_user.is_some() {
                c.ptr("/securityContext/runAsUser")
            } else {
                w.ptr("/securityContext/runAsUser")
            };
            out.report(
                RUN_AS_NON_ROOT,
                s.obj,
                &at,
                format!("{} runs as UID 0 (root)", c.describe()),
            );
            continue;
        }
        if user.is_some_and(|u| u > 0) || non_root == Some(true) {
            continue;
        }
        let (at, how) = if flag(&c, "runAsNonRoot") == Some(false) {
            (
                c.ptr("/securityContext/runAsNonRoot"),
                "explicitly allows root",
            )
        } else if non_root == Some(false) {
            (
                w.ptr("/securityContext/runAsNonRoot"),
                "is allowed to run as root by the pod's `runAsNonRoot: false`",
            )
        } else {
            (c.security_anchor(), "may run as root (its image decides)")
        };
        out.report(
            RUN_AS_NON_ROOT,
            s.obj,
            &at,
            format!(
                "{} {how}; set `runAsNonRoot: true` and a non-zero `runAsUser` in the pod or container securityContext",
                c.describe()
            ),
        );
    }
}

/// `readOnlyRootFilesystem` is not `true` (containers and init containers).
pub(crate) fn read_only_root_fs(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    if w.is_windows() {
        return;
    }
    for c in w.regular_and_init() {
        let (at, how) = match flag(&c, "readOnlyRootFilesystem") {
            Some(true) => continue,
            Some(false) => (
                c.ptr("/securityContext/readOnlyRootFilesystem"),
                "has a writable root file system",
            ),
            None => (
                c.security_anchor(),
                "does not set `readOnlyRootFilesystem: true`",
            ),
        };
        out.report(
            READ_ONLY_ROOT_FS,
            s.obj,
            &at,
            format!(
                "{} {how}; an attacker can then write tools into it. Mount an emptyDir where it needs to write",
                c.describe()
            ),
        );
    }
}

fn seccomp_type(v: Option<&Value>) -> Option<&str> {
    v?.get("seccompProfile")?.get("type")?.as_str()
}

/// No seccomp profile (`RuntimeDefault` or `Localhost`) for a container, or `Unconfined`.
pub(crate) fn seccomp_profile(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    if w.is_windows() {
        return;
    }
    let pod = seccomp_type(w.get("securityContext"));
    if pod == Some("Unconfined") {
        out.report(
            SECCOMP_PROFILE,
            s.obj,
            &w.ptr("/securityContext/seccompProfile/type"),
            "the pod runs `Unconfined`: every system call is open to its containers; use `RuntimeDefault`",
        );
    }
    let pod_ok = matches!(pod, Some("RuntimeDefault" | "Localhost"));
    let containers: Vec<Container<'_>> = w
        .containers()
        .filter(|c| c.list != ContainerList::Ephemeral)
        .collect();
    let mut unset = Vec::new();
    for c in &containers {
        match seccomp_type(c.get("securityContext")) {
            Some("Unconfined") => out.report(
                SECCOMP_PROFILE,
                s.obj,
                &c.ptr("/securityContext/seccompProfile/type"),
                format!(
                    "{} runs `Unconfined`: every system call is open to it; use `RuntimeDefault`",
                    c.describe()
                ),
            ),
            Some(_) => {}
            None if pod_ok => {}
            None => unset.push(*c),
        }
    }
    if unset.is_empty() || pod == Some("Unconfined") {
        return;
    }
    if unset.len() == containers.len() {
        // Nobody set one: one finding, where the pod-level setting belongs.
        let at = if w.get("securityContext").is_some() {
            w.ptr("/securityContext")
        } else {
            w.ptr("")
        };
        out.report(
            SECCOMP_PROFILE,
            s.obj,
            &at,
            "the pod sets no seccomp profile; set `securityContext.seccompProfile.type: RuntimeDefault` to filter the system calls its containers can make",
        );
        return;
    }
    for c in unset {
        out.report(
            SECCOMP_PROFILE,
            s.obj,
            &c.security_anchor(),
            format!(
                "{} has no seccomp profile; set `seccompProfile.type: RuntimeDefault` here or for the whole pod",
                c.describe()
            ),
        );
    }
}

/// Capabilities that give a container power over the node or other pods.
const DANGEROUS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "NET_ADMIN",
    "NET_RAW",
    "SYS_PTRACE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "SYS_RESOURCE",
    "DAC_READ_SEARCH",
    "BPF",
    "PERFMON",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "SYSLOG",
];

/// Dangerous capabilities added (error); NET_RAW not dropped (warning).
pub(crate) fn dangerous_capabilities(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    if w.is_windows() {
        return;
    }
    for c in w.containers() {
        let mut net_raw_added = false;
        for (i, cap) in caps(&c, "add") {
            if DANGEROUS.contains(&cap.as_str()) {
                net_raw_added |= cap == "NET_RAW" || cap == "ALL";
                out.report(
                    DANGEROUS_CAPABILITIES,
                    s.obj,
                    &c.ptr(&format!("/securityContext/capabilities/add/{i}")),
                    format!(
                        "{} adds capability {cap}, which gives it power over the node or its neighbours",
                        c.describe()
                    ),
                );
            }
        }
        if net_raw_added || flag(&c, "privileged") == Some(true) {
            continue;
        }
        let dropped = caps(&c, "drop").any(|(_, cap)| cap == "NET_RAW" || cap == "ALL");
        if dropped {
            continue;
        }
        let at = if c
            .security("capabilities")
            .and_then(|x| x.get("drop"))
            .is_some()
        {
            c.ptr("/securityContext/capabilities/drop")
        } else if c.security("capabilities").is_some() {
            c.ptr("/securityContext/capabilities")
        } else {
            c.security_anchor()
        };
        out.report_as(
            DANGEROUS_CAPABILITIES,
            Severity::Warning,
            s.obj,
            &at,
            format!(
                "{} keeps NET_RAW, which lets it forge packets and spoof other pods on the node; add `capabilities: {{drop: [ALL]}}`",
                c.describe()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, deployment, of};

    /// A container with everything right, then `extra` lines inside its securityContext.
    fn hardened(extra: &str) -> String {
        deployment(&format!(
            "      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: app
          image: app:1.0.0
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
{extra}"
        ))
    }

    #[test]
    fn hardened_container_is_clean() {
        let d = hardened("");
        for rule in [
            PRIVILEGED_CONTAINER,
            PRIVILEGE_ESCALATION,
            RUN_AS_NON_ROOT,
            READ_ONLY_ROOT_FS,
            SECCOMP_PROFILE,
            DANGEROUS_CAPABILITIES,
        ] {
            assert!(at(rule, &d).is_empty(), "{rule}: {:?}", of(rule, &d));
        }
    }

    #[test]
    fn privileged() {
        let d = hardened("            privileged: true\n");
        assert_eq!(at(PRIVILEGED_CONTAINER, &d), [(25, 13)]);
    }

    #[test]
    fn escalation_explicit_and_absent() {
        let d = hardened("").replace(
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
        );
        assert_eq!(at(PRIVILEGE_ESCALATION, &d), [(22, 13)]);
        let d = deployment("      containers:\n        - name: app\n          image: app:1.0.0\n");
        assert_eq!(at(PRIVILEGE_ESCALATION, &d), [(15, 11)]);
    }

    #[test]
    fn root_in_every_way() {
        let none =
            deployment("      containers:\n        - name: app\n          image: app:1.0.0\n");
        assert_eq!(at(RUN_AS_NON_ROOT, &none), [(15, 11)]);
        let uid0 = hardened("            runAsUser: 0\n");
        assert_eq!(at(RUN_AS_NON_ROOT, &uid0), [(25, 13)]);
        let off =
            hardened("            runAsNonRoot: false\n").replace("        runAsUser: 10001\n", "");
        assert_eq!(at(RUN_AS_NON_ROOT, &off), [(24, 13)]);
        let user_only = deployment(
            "      securityContext: {runAsUser: 1000}\n      containers: [{name: app, image: app:1.0.0}]\n",
        );
        assert!(at(RUN_AS_NON_ROOT, &user_only).is_empty());
        let windows = deployment(
            "      os: {name: windows}\n      containers: [{name: app, image: app:1.0.0}]\n",
        );
        assert!(at(RUN_AS_NON_ROOT, &windows).is_empty());
    }

    #[test]
    fn read_only_root() {
        let d = hardened("").replace(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        );
        assert_eq!(at(READ_ONLY_ROOT_FS, &d), [(23, 13)]);
    }

    #[test]
    fn seccomp() {
        let none = deployment(
            "      containers:\n        - name: a\n          image: app:1.0.0\n        - name: b\n          image: app:1.0.0\n",
        );
        assert_eq!(at(SECCOMP_PROFILE, &none), [(13, 5)]);
        let some = deployment(
            "      containers:\n        - name: a\n          image: app:1.0.0\n          securityContext: {seccompProfile: {type: RuntimeDefault}}\n        - name: b\n          image: app:1.0.0\n",
        );
        assert_eq!(at(SECCOMP_PROFILE, &some), [(18, 11)]);
        let unconfined = hardened("            seccompProfile: {type: Unconfined}\n");
        assert_eq!(at(SECCOMP_PROFILE, &unconfined), [(25, 30)]);
    }

    #[test]
    fn capabilities() {
        let added = hardened("").replace(
            "{drop: [ALL]}",
            "{drop: [ALL], add: [NET_BIND_SERVICE, CAP_SYS_ADMIN]}",
        );
        let f = of(DANGEROUS_CAPABILITIES, &added);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].pos.line, f[0].pos.column, f[0].severity),
            (24, 65, Severity::Error)
        );
        let kept = hardened("").replace("{drop: [ALL]}", "{drop: [SETUID]}");
        let f = of(DANGEROUS_CAPABILITIES, &kept);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].pos.line, f[0].severity), (24, Severity::Warning));
    }
}
