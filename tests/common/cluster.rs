//! A fake cluster and a copy of the example repo, for the tests of the engine and of blue/green
//! releases.

use std::path::PathBuf;

use tally_fake_apiserver::{Config, FakeApiServer, Handle};

/// The fake API server (real HTTP on 127.0.0.1), a kubeconfig for it, and a scratch directory
/// holding the example repo at `repo/`.
pub struct Cluster {
    pub server: Handle,
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
}

impl Cluster {
    /// Starts a server with `config` and writes the example repo in a scratch directory named
    /// after `name`. `web` is released blue/green; its post-switch check is cut to a second to
    /// keep the tests quick.
    pub fn start(name: &str, config: Config) -> Cluster {
        let server = FakeApiServer::start_in_background(config).unwrap_or_else(|e| panic!("{e}"));
        let dir = super::temp_dir(name);
        let kubeconfig = dir.join("kubeconfig");
        super::init_repo(&dir.join("repo"));
        server
            .write_kubeconfig(&kubeconfig)
            .unwrap_or_else(|e| panic!("{e}"));
        let c = Cluster {
            server,
            kubeconfig,
            dir,
        };
        c.edit(
            "apps/web/app.yaml",
            "    scaleDownDelaySeconds: 600\n",
            "    scaleDownDelaySeconds: 600\n    postPromotionSeconds: 1\n",
        );
        c
    }

    /// The example repo's root.
    pub fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// Replaces `from` (which must be there) with `to` in the repo's `file`.
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.repo().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains(from), "{from:?} not in {file}");
        std::fs::write(&path, text.replace(from, to)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
