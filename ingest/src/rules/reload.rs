//! Hot reload of the rule file: poll its modification time and content, validate, swap.
//!
//! A [`RuleWatcher`] remembers the last good [`RuleSet`]. [`RuleWatcher::poll`] re-reads the
//! file when its mtime or length changed; a valid file becomes the new rule set, an invalid
//! one is refused with its precise message and the old rules stay. Polling (rather than
//! inotify) is deliberate: it survives editors that replace the file by rename and works on
//! every filesystem; the worker polls about once a second. This module does not apply the
//! rules: the caller hands the new set to [`super::Engine::set_rules`].

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::config::RuleSet;
use crate::error::{Error, Result};

/// What a poll found.
#[derive(Debug)]
pub enum Reload {
    /// The file did not change.
    Unchanged,
    /// The file changed and is valid: these are the new rules.
    Applied(RuleSet),
    /// The file changed but is invalid: the old rules stay.
    Refused(Error),
}

/// Watches one rule file.
#[derive(Debug)]
pub struct RuleWatcher {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    text: String,
    current: RuleSet,
}

impl RuleWatcher {
    /// Loads the file; it must be valid at start.
    ///
    /// # Errors
    /// As [`RuleSet::load`].
    pub fn open(path: &Path) -> Result<RuleWatcher> {
        let stamp = stamp(path);
        let text = read(path)?;
        let current = RuleSet::parse(&text, &path.display().to_string())?;
        Ok(RuleWatcher {
            path: path.to_path_buf(),
            stamp,
            text,
            current,
        })
    }

    /// The rules in force.
    pub fn current(&self) -> &RuleSet {
        &self.current
    }

    /// Checks the file once.
    pub fn poll(&mut self) -> Reload {
        let now = stamp(&self.path);
        if now.is_some() && now == self.stamp {
            return Reload::Unchanged;
        }
        let text = match read(&self.path) {
            Ok(t) => t,
            Err(e) => return Reload::Refused(e),
        };
        self.stamp = now;
        if text == self.text {
            return Reload::Unchanged;
        }
        self.text = text;
        match RuleSet::parse(&self.text, &self.path.display().to_string()) {
            Ok(set) => {
                self.current = set.clone();
                Reload::Applied(set)
            }
            Err(e) => Reload::Refused(e),
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::io("read rule file", path, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "[[rule]]\nname = \"o\"\nwindow = \"30s\"\ngroup_by = \"car_number\"\n\
                        having = \"avg(speed) > 80\"\nset_key = \"{window_date}\"\n\
                        member = \"{car_number}\"\n";

    #[test]
    fn edits_apply_and_invalid_edits_are_refused_keeping_old_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, RULE).unwrap();
        let mut w = RuleWatcher::open(&path).unwrap();
        assert!(matches!(w.poll(), Reload::Unchanged));

        // Same length edit: the content comparison catches it even if mtime is coarse.
        std::fs::write(&path, RULE.replace("> 80", "> 99")).unwrap();
        match w.poll() {
            Reload::Applied(set) => assert_eq!(set.rules[0].having.source(), "avg(speed) > 99"),
            other => panic!("expected Applied, got {other:?}"),
        }
        std::fs::write(&path, RULE.replace("> 80", "> oops")).unwrap();
        match w.poll() {
            Reload::Refused(e) => assert!(e.to_string().contains("field `having`"), "{e}"),
            other => panic!("expected Refused, got {other:?}"),
        }
        assert_eq!(w.current().rules[0].having.source(), "avg(speed) > 99");
        assert!(
            matches!(w.poll(), Reload::Unchanged),
            "refused once, not every poll"
        );
    }
}
