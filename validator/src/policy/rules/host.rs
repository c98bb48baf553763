//! The host's namespaces and files: `host-namespaces`, `host-path`, `docker-socket`.

use serde_json::Value;

use crate::finding::Severity;
use crate::policy::engine::Out;

use super::{DOCKER_SOCKET, HOST_NAMESPACES, HOST_PATH, Subject};

/// `hostNetwork`, `hostPID` or `hostIPC` set to true.
pub(crate) fn host_namespaces(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for (field, what) in [
        (
            "hostNetwork",
            "the node's network: it can bind node ports and sniff node traffic",
        ),
        (
            "hostPID",
            "the node's process table: it can see and signal every process on the node",
        ),
        (
            "hostIPC",
            "the node's IPC namespace: it can read other processes' shared memory",
        ),
    ] {
        if w.get(field).and_then(Value::as_bool) == Some(true) {
            out.report(
                HOST_NAMESPACES,
                s.obj,
                &w.ptr(&format!("/{field}")),
                format!("`{field}: true` shares {what}"),
            );
        }
    }
}

/// A host path without `.`, `//` or a trailing `/`.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Container runtime sockets and the directories that hold them.
fn runtime_socket(path: &str) -> bool {
    const SOCKETS: &[&str] = &[
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run/docker",
        "/run/docker",
        "/var/run/containerd/containerd.sock",
        "/run/containerd/containerd.sock",
        "/var/run/containerd",
        "/run/containerd",
        "/var/run/crio/crio.sock",
        "/run/crio/crio.sock",
        "/var/run/crio",
        "/run/crio",
        "/var/run/cri-dockerd.sock",
        "/run/cri-dockerd.sock",
        "/run/podman/podman.sock",
        "/var/run/podman/podman.sock",
        "/var/run",
        "/run",
    ];
    SOCKETS.contains(&path) || path.ends_with("/docker.sock") || path.ends_with("/containerd.sock")
}

/// Whether a host path gives control of the node: an exact system directory, or anything under
/// the trees that hold the kubelet's, etcd's or the kernel's state.
fn sensitive(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "/", "/etc", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/var", "/var/lib", "/home", "/opt",
    ];
    const TREES: &[&str] = &[
        "/proc",
        "/sys",
        "/dev",
        "/boot",
        "/root",
        "/etc/kubernetes",
        "/var/lib/kubelet",
        "/var/lib/etcd",
        "/var/lib/docker",
        "/var/lib/containerd",
        "/etc/shadow",
        "/etc/sudoers",
    ];
    EXACT.contains(&path)
        || TREES.iter().any(|t| {
            path.strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

fn host_paths<'a>(s: &'a Subject<'a>) -> impl Iterator<Item = (usize, String)> + 'a {
    s.workload.iter().flat_map(|w| {
        w.volumes().filter_map(|(i, v)| {
            let path = v.get("hostPath")?.get("path")?.as_str()?;
            Some((i, normalize(path)))
        })
    })
}

/// A hostPath volume: an error on system and node-state paths, a warning elsewhere. Runtime
/// sockets are `docker-socket`'s.
pub(crate) fn host_path(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for (i, path) in host_paths(s) {
        if runtime_socket(&path) {
            continue;
        }
        let at = w.ptr(&format!("/volumes/{i}/hostPath/path"));
        if sensitive(&path) {
            out.report(
                HOST_PATH,
                s.obj,
                &at,
                format!("hostPath `{path}` exposes the node's system files or the kubelet's state; a container with it can take over the node"),
            );
        } else {
            out.report_as(
                HOST_PATH,
                Severity::Warning,
                s.obj,
                &at,
                format!("hostPath `{path}` ties the pod to one node's files and bypasses volume isolation; prefer a PersistentVolumeClaim, emptyDir, ConfigMap or Secret"),
            );
        }
    }
}

/// A container runtime's socket (Docker, containerd, CRI-O, Podman) mounted into the pod.
pub(crate) fn docker_socket(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for (i, path) in host_paths(s) {
        if runtime_socket(&path) {
            out.report(
                DOCKER_SOCKET,
                s.obj,
                &w.ptr(&format!("/volumes/{i}/hostPath/path")),
                format!("hostPath `{path}` gives the pod the container runtime's socket: it can start privileged containers on the node"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, deployment, of};

    #[test]
    fn host_namespaces_each_reported() {
        let d = deployment(
            "      hostNetwork: true\n      hostPID: false\n      hostIPC: true\n      containers: [{name: a, image: app:1.0.0}]\n",
        );
        assert_eq!(at(HOST_NAMESPACES, &d), [(14, 7), (16, 7)]);
    }

    #[test]
    fn host_paths_by_sensitivity() {
        let d = deployment(
            "      containers: [{name: a, image: app:1.0.0}]
      volumes:
        - name: etc
          hostPath: {path: /etc/}
        - name: pods
          hostPath: {path: /var/lib/kubelet/pods}
        - name: certs
          hostPath: {path: /etc/ssl/certs}
        - name: sock
          hostPath: {path: /var/run/docker.sock, type: Socket}
        - name: data
          emptyDir: {}
",
        );
        let f = of(HOST_PATH, &d);
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.pos.line, f.pos.column, f.severity))
            .collect();
        assert_eq!(
            got,
            [
                (17, 22, Severity::Error),
                (19, 22, Severity::Error),
                (21, 22, Severity::Warning)
            ]
        );
        assert_eq!(at(DOCKER_SOCKET, &d), [(23, 22)]);
        assert_eq!(normalize("//var/./run//"), "/var/run");
    }
}
