//! The action's install step (`action/install.sh`) against fake releases on a local HTTP
//! server: the right asset installed after its checksum is verified, a checksum mismatch refused,
//! a missing release built from source instead. The checks themselves are in
//! `action/test-install.sh` (runnable alone); it needs bash, curl and python3, and the test is
//! skipped, saying so, where one is missing. Nothing leaves the machine.

use std::process::Command;

/// Whether `program` runs here (`program --version` exits 0).
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn install_script_verifies_installs_and_falls_back() {
    let missing: Vec<&str> = ["bash", "curl", "python3"]
        .into_iter()
        .filter(|program| !available(program))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: action/test-install.sh needs {} (not found)",
            missing.join(", ")
        );
        return;
    }
    let out = Command::new("bash")
        .arg("action/test-install.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running action/test-install.sh: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all install checks passed"), "{stdout}");
}
