//! Reloading when a watched file changes: every interval the server looks at the size and
//! modification time of `agent-safe.yaml` and of the action, policy and inventory files it
//! names; when one of them changed, it hashes their content, and when that changed too it
//! reloads exactly as SIGHUP does (a bad new configuration leaves the old one serving and is
//! reported on `/readyz` and to the event sink). Polling needs no file-notification dependency
//! and works the same on every filesystem, ConfigMap volumes (symlink swaps) included.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use agent_safe_registry::yaml::sha256;

use crate::Server;
use crate::source::{Source, revision, yaml_files};

/// Size and modification time of one watched path (`None`: missing or unreadable).
type Stat = (PathBuf, Option<(SystemTime, u64)>);

/// What the watcher last saw.
#[derive(Debug)]
pub(crate) struct Watch {
    stats: Option<Vec<Stat>>,
    digest: Option<String>,
    /// The content the serving configuration was loaded from, when the watcher knows it.
    serving: Option<String>,
    /// The failed reload (its time) already answered by reloading the serving content.
    handled: Option<String>,
}

fn stat(path: PathBuf) -> Stat {
    // `metadata` follows symlinks: a ConfigMap's `..data` swap changes the target's times.
    let meta = std::fs::metadata(&path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    (path, meta)
}

/// The watched files as they are now (cheap: no file is read but agent-safe.yaml).
fn stats(source: &Source) -> Vec<Stat> {
    let mut out = Vec::new();
    if let Ok(Some(config)) = source.config_path() {
        out.push(stat(config));
    }
    // An unreadable configuration is watched through its own file only.
    if let Ok(paths) = source.current_paths() {
        for dir in [&paths.registry, &paths.policies] {
            out.push(stat(dir.clone()));
            for file in yaml_files(dir).unwrap_or_default() {
                out.push(stat(file));
            }
        }
        if let Some(inventory) = paths.inventory {
            out.push(stat(inventory));
        }
    }
    out
}

/// The content: agent-safe.yaml's hash and the policy revision of the files it names (or why
/// they cannot be read, so that a change of error is a change too).
fn digest(source: &Source) -> (String, Option<String>) {
    let config = match source.config_path() {
        Ok(Some(path)) => match std::fs::read(&path) {
            Ok(bytes) => agent_safe_core::hex::encode(&sha256(&bytes)),
            Err(e) => format!("unreadable: {e}"),
        },
        Ok(None) => "none".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let revision = source.current_paths().and_then(|paths| revision(&paths));
    match revision {
        Ok(rev) => (format!("{config} {rev}"), Some(rev)),
        Err(e) => (format!("{config} error: {e}"), None),
    }
}

impl Watch {
    /// Starts from the files as they are; `loaded` is the revision serving now: when the files
    /// already differ from it (they changed while the server started), the first poll reloads.
    pub(crate) fn new(source: &Source, loaded: &str) -> Self {
        let stats = stats(source);
        let (digest, revision) = digest(source);
        if revision.as_deref() == Some(loaded) {
            Self {
                stats: Some(stats),
                serving: Some(digest.clone()),
                digest: Some(digest),
                handled: None,
            }
        } else {
            Self { stats: None, digest: None, serving: None, handled: None }
        }
    }

    /// The last polled content now serves (a reload of it succeeded).
    pub(crate) fn loaded(&mut self) {
        self.serving.clone_from(&self.digest);
    }

    /// Whether to reload although nothing changed since the last poll: a reload failed at
    /// `failed_at` (SIGHUP or the admin endpoint, between two polls) and the files are back to
    /// the content that serves, so `/readyz` would otherwise report the failure until some
    /// other change. Once per failure.
    pub(crate) fn back_to_serving(&mut self, failed_at: Option<&str>) -> bool {
        let Some(at) = failed_at else { return false };
        if self.handled.as_deref() == Some(at) || self.digest.is_none() {
            return false;
        }
        if self.digest != self.serving {
            return false;
        }
        self.handled = Some(at.to_owned());
        true
    }

    /// Whether the content changed since the last call (a touched but unchanged file is not a
    /// change). Blocking: file I/O.
    pub(crate) fn poll(&mut self, source: &Source) -> bool {
        let now = stats(source);
        if self.stats.as_ref() == Some(&now) {
            return false;
        }
        self.stats = Some(now);
        let (digest, _) = digest(source);
        if self.digest.as_ref() == Some(&digest) {
            return false;
        }
        self.digest = Some(digest);
        true
    }
}

impl Server {
    /// Reloads (as [`Server::reload`] and SIGHUP do) whenever `agent-safe.yaml` or a file of
    /// the registry, policies or inventory it names changes, looking every `interval`. A new
    /// configuration that fails to load is reported once (on `/readyz` and to the event sink)
    /// and tried again at the next change. Runs until the runtime stops or the handle is
    /// aborted; must be called from within a tokio runtime.
    pub fn reload_on_change(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            let s = server.clone();
            let start = tokio::task::spawn_blocking(move || {
                let loaded = s.current().revision.clone();
                Watch::new(&s.shared.source, &loaded)
            });
            let Ok(mut watch) = start.await else { return };
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let s = server.clone();
                let polled = tokio::task::spawn_blocking(move || {
                    let changed = watch.poll(&s.shared.source);
                    let failed = s.shared.last_reload().filter(|r| !r.ok).map(|r| r.at);
                    // The outcome is reported to the event sink and on /readyz.
                    if (changed || watch.back_to_serving(failed.as_deref())) && s.reload().is_ok() {
                        watch.loaded();
                    }
                    watch
                });
                match polled.await {
                    Ok(w) => watch = w,
                    Err(_) => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    enum Step {
        /// Writes a file (relative to the project).
        Write(&'static str, &'static str),
        /// Sets a file's modification time without changing it.
        Touch(&'static str, u64),
        Remove(&'static str),
    }
    use Step::*;

    #[track_caller]
    fn check(steps: &[(Step, bool)]) {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        for sub in ["actions", "policies", "other"] {
            std::fs::create_dir(p(sub)).unwrap();
        }
        std::fs::write(p("agent-safe.yaml"), "registry: actions\npolicies: policies\n").unwrap();
        std::fs::write(p("policies/main.yaml"), "rules: []\n").unwrap();
        let source = Source::new().config_file(p("agent-safe.yaml"));
        let loaded = revision(&source.current_paths().unwrap()).unwrap();
        let mut watch = Watch::new(&source, &loaded);
        assert!(!watch.poll(&source), "a change before any");
        for (i, (step, expected)) in steps.iter().enumerate() {
            match step {
                Write(name, text) => std::fs::write(p(name), text).unwrap(),
                Touch(name, secs) => File::options()
                    .write(true)
                    .open(p(name))
                    .unwrap()
                    .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(*secs))
                    .unwrap(),
                Remove(name) => std::fs::remove_file(p(name)).unwrap(),
            }
            assert_eq!(watch.poll(&source), *expected, "step {i}");
            assert!(!watch.poll(&source), "step {i}: a second change without one");
        }
    }

    #[test]
    fn content_changes_are_seen_and_touches_are_not() {
        check(&[
            (Write("policies/main.yaml", "rules: [x]\n"), true),
            (Touch("policies/main.yaml", 1_000), false),
            (Write("policies/extra.yml", ""), true),
            (Remove("policies/extra.yml"), true),
            (Write("actions/a.yaml", "a"), true),
            (Write("policies/README.md", "ignored by the loaders"), false),
            (Write("other/b.yaml", "not a watched directory"), false),
            // agent-safe.yaml itself, then the directories it now names.
            (Write("agent-safe.yaml", "registry: actions\npolicies: other\n"), true),
            (Write("other/b.yaml", "now watched"), true),
            (Write("policies/main.yaml", "no longer watched"), false),
            // A broken agent-safe.yaml is a change (the reload reports it), and so is its fix.
            (Write("agent-safe.yaml", "registry: [\n"), true),
            (Write("agent-safe.yaml", "registry: actions\npolicies: policies\n"), true),
            (Touch("agent-safe.yaml", 2_000), false),
        ]);
    }

    #[test]
    fn a_failure_is_answered_once_when_the_files_are_back_to_what_serves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("agent-safe.yaml"), "policies: policies\n").unwrap();
        let source = Source::new().config_file(dir.path().join("agent-safe.yaml"));
        let loaded = revision(&source.current_paths().unwrap()).unwrap();
        let mut watch = Watch::new(&source, &loaded);
        assert!(!watch.back_to_serving(None), "no failure");
        // A reload failed (a bad file came and went between two polls).
        assert!(!watch.poll(&source));
        assert!(watch.back_to_serving(Some("t1")));
        assert!(!watch.back_to_serving(Some("t1")), "once per failure");
        assert!(watch.back_to_serving(Some("t2")));
        // The files differ from what serves (a failed reload of them): nothing to answer.
        std::fs::write(dir.path().join("policies/bad.yaml"), "rules: [").unwrap();
        assert!(watch.poll(&source));
        assert!(!watch.back_to_serving(Some("t3")));
        // Back to the serving content: answered.
        std::fs::remove_file(dir.path().join("policies/bad.yaml")).unwrap();
        assert!(watch.poll(&source));
        assert!(watch.back_to_serving(Some("t4")));
        // A reload of new content succeeded: that content serves from now on.
        std::fs::write(dir.path().join("policies/good.yaml"), "rules: []\n").unwrap();
        assert!(watch.poll(&source));
        watch.loaded();
        assert!(watch.back_to_serving(Some("t5")));
    }

    #[test]
    fn files_changed_before_the_watch_started_reload_at_the_first_poll() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("agent-safe.yaml"), "policies: policies\n").unwrap();
        let source = Source::new().config_file(dir.path().join("agent-safe.yaml"));
        let mut watch = Watch::new(&source, "sha256:what-was-loaded-before-a-change");
        assert!(watch.poll(&source));
        assert!(!watch.poll(&source));
    }
}
