//! A node's accept policy: what its lookups report, and which well-known
//! benign values (warninglists) are never published nor matched.
//!
//! The policy decides what this node acts on, not what it stores and relays:
//! every valid record is still kept and passed on, so that a member with a
//! stricter or looser policy behind this node gets the whole feed, and so that
//! reconciliation does not fetch the same refused records on every pass.

use crate::cir::Category;
use crate::lookup::{Engine, Entry, MatchKind};
use crate::normalize::{self, Observable, ObservableType};
use crate::record::RecordId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Largest warninglist file read (bytes): cloud provider ranges run to a few MiB.
pub const MAX_WARNINGLIST_BYTES: u64 = 64 << 20;

/// The `[accept]` section of `node.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptSection {
    /// Matches whose score (confidence after sightings and decay) is below this are not reported.
    #[serde(default)]
    pub min_confidence: u8,
    /// When not empty, only indicators of these observable types are reported.
    #[serde(default)]
    pub types: Vec<String>,
    /// Indicators of these types are never reported.
    #[serde(default)]
    pub refuse_types: Vec<String>,
    /// When not empty, only indicators with one of these categories are reported.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Indicators with any of these categories are never reported.
    #[serde(default)]
    pub refuse_categories: Vec<String>,
    /// Warninglist files (relative to the node directory): one value, network
    /// or domain per line, `#` comments. The file's stem names the list.
    #[serde(default)]
    pub warninglists: Vec<PathBuf>,
}

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("accept.{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("warninglist {path}: {reason}")]
    Warninglist { path: PathBuf, reason: String },
}

/// The checked policy.
#[derive(Default)]
pub struct AcceptPolicy {
    min_confidence: u8,
    types: Vec<ObservableType>,
    refuse_types: Vec<ObservableType>,
    categories: u32,
    refuse_categories: u32,
    warninglists: Warninglists,
}

impl AcceptPolicy {
    /// Checks the section and loads its warninglists (paths relative to `node_dir`).
    pub fn load(section: &AcceptSection, node_dir: &Path) -> Result<AcceptPolicy, AcceptError> {
        if section.min_confidence > 100 {
            return Err(AcceptError::Invalid { field: "min_confidence", reason: "must be 0-100".into() });
        }
        let paths: Vec<PathBuf> = section.warninglists.iter().map(|p| node_dir.join(p)).collect();
        Ok(AcceptPolicy {
            min_confidence: section.min_confidence,
            types: types("types", &section.types)?,
            refuse_types: types("refuse_types", &section.refuse_types)?,
            categories: categories("categories", &section.categories)?,
            refuse_categories: categories("refuse_categories", &section.refuse_categories)?,
            warninglists: Warninglists::load(&paths)?,
        })
    }

    /// The warninglists.
    pub fn warninglists(&self) -> &Warninglists {
        &self.warninglists
    }

    /// Whether a match is reported under this policy: [`AcceptPolicy::refusal`]
    /// without building the reason, for callers that walk the whole feed.
    pub fn accepts(&self, entry: &Entry, score: u8) -> bool {
        score >= self.min_confidence
            && !self.refuse_types.contains(&entry.kind)
            && (self.types.is_empty() || self.types.contains(&entry.kind))
            && entry.categories & self.refuse_categories == 0
            && (self.categories == 0 || entry.categories & self.categories != 0)
    }

    /// Why a match is not reported under this policy, if it is not.
    pub fn refusal(&self, entry: &Entry, score: u8) -> Option<String> {
        let id = &entry.id.to_string()[..16];
        if score < self.min_confidence {
            return Some(format!("{id}: score {score} is below accept.min_confidence {}", self.min_confidence));
        }
        if self.refuse_types.contains(&entry.kind) || (!self.types.is_empty() && !self.types.contains(&entry.kind)) {
            return Some(format!("{id}: type {} is not accepted (accept.types, accept.refuse_types)", entry.kind));
        }
        if entry.categories & self.refuse_categories != 0 {
            return Some(format!("{id}: a category in accept.refuse_categories"));
        }
        if self.categories != 0 && entry.categories & self.categories == 0 {
            return Some(format!("{id}: no category in accept.categories"));
        }
        None
    }
}

fn types(field: &'static str, names: &[String]) -> Result<Vec<ObservableType>, AcceptError> {
    names.iter().map(|n| n.parse().map_err(|e| AcceptError::Invalid { field, reason: format!("{e}") })).collect()
}

fn categories(field: &'static str, names: &[String]) -> Result<u32, AcceptError> {
    names.iter().try_fold(0u32, |mask, name| {
        let category: Category = name.parse().map_err(|e| AcceptError::Invalid { field, reason: format!("{e}") })?;
        Ok(mask | 1u32.checked_shl(category.code() as u32).unwrap_or(0))
    })
}

/// Well-known benign values by list, matched like indicators: exact values,
/// addresses inside listed networks, and subdomains of listed domains.
#[derive(Default)]
pub struct Warninglists {
    engine: Engine,
    names: Vec<String>,
}

impl Warninglists {
    /// Reads each file; a line that is not an observable is an error naming it.
    pub fn load(paths: &[PathBuf]) -> Result<Warninglists, AcceptError> {
        let mut lists = Warninglists::default();
        for path in paths {
            let error = |reason: String| AcceptError::Warninglist { path: path.clone(), reason };
            let size = std::fs::metadata(path).map_err(|e| error(e.to_string()))?.len();
            if size > MAX_WARNINGLIST_BYTES {
                return Err(error(format!("{size} bytes, over the limit of {MAX_WARNINGLIST_BYTES}")));
            }
            let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
            let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into());
            let values = text.lines().enumerate().filter_map(|(n, l)| {
                let value = l.split('#').next().unwrap_or("").trim();
                (!value.is_empty()).then_some((n + 1, value))
            });
            let mut parsed = Vec::new();
            for (line, value) in values {
                let observable = normalize::detect(value).map_err(|e| error(format!("line {line}: {e}")))?;
                parsed.push(observable);
            }
            lists.add(&name, &parsed);
        }
        Ok(lists)
    }

    /// Adds a named list of canonical observables.
    pub fn add(&mut self, name: &str, values: &[Observable]) {
        let list = self.names.len() as u32;
        self.names.push(name.to_string());
        for observable in values {
            let id: [u8; 32] = Sha256::new()
                .chain_update(name.as_bytes())
                .chain_update([0])
                .chain_update(observable.value.as_bytes())
                .finalize()
                .into();
            let entry = Entry {
                id: RecordId(id),
                kind: observable.kind,
                level: 0,
                confidence: 0,
                tlp: 0,
                categories: 0,
                valid_until: i64::MAX,
                first_seen: 0,
                last_seen: 0,
                created_at: 0,
                author: list,
                active: true,
            };
            self.engine.add(entry, &observable.value);
        }
    }

    /// The list `observable` is on, if any. A URL or an email address on a
    /// benign host is not benign itself (a payload on a code-hosting site, a
    /// phishing sender at a webmail domain): those are listed only exactly.
    pub fn check(&self, observable: &Observable) -> Option<&str> {
        let exact_only = matches!(observable.kind, ObservableType::Url | ObservableType::Email);
        let hit =
            self.engine.lookup(observable, 0).into_iter().find(|hit| !exact_only || hit.kind == MatchKind::Exact)?;
        Some(&self.names[self.engine.entry(hit.entry).author as usize])
    }

    /// True when no list is loaded.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Warninglists, AcceptError>) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| {
                let path = dir.path().join(name);
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        let loaded = Warninglists::load(&paths);
        (dir, loaded)
    }

    fn on(lists: &Warninglists, raw: &str) -> Option<String> {
        lists.check(&normalize::detect(raw).unwrap()).map(String::from)
    }

    #[test]
    fn values_networks_and_parent_domains_are_on_their_list() {
        let (_dir, loaded) = lists(&[
            ("public-resolvers.txt", "# resolvers\n8.8.8.8\n2001:4860:4860::8888  # google\n"),
            ("cloud-ranges.txt", "104.16.0.0/13\n"),
            ("top-domains.txt", "google.com\n"),
        ]);
        let lists = loaded.unwrap();
        assert_eq!(on(&lists, "8.8.8.8").as_deref(), Some("public-resolvers"));
        assert_eq!(on(&lists, "104.18.2.3").as_deref(), Some("cloud-ranges"));
        assert_eq!(on(&lists, "mail.google.com").as_deref(), Some("top-domains"));
        assert_eq!(on(&lists, "google.com.evil.example"), None);
        assert_eq!(on(&lists, "8.8.4.4"), None);
    }

    #[test]
    fn the_shipped_warninglists_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("warninglists");
        let paths: Vec<PathBuf> =
            ["public-resolvers.txt", "top-domains.txt", "cloud-ranges.txt"].iter().map(|f| dir.join(f)).collect();
        let lists = Warninglists::load(&paths).unwrap();
        assert_eq!(on(&lists, "9.9.9.9").as_deref(), Some("public-resolvers"));
        assert_eq!(on(&lists, "login.microsoft.com").as_deref(), Some("top-domains"));
        assert_eq!(on(&lists, "evil-bucket.s3.amazonaws.com"), None, "anyone can have a name under amazonaws.com");
        assert_eq!(on(&lists, "https://github.com/evil/payload"), None, "a URL on a listed host is not benign");
        assert_eq!(on(&lists, "phish@google.com"), None);
        assert_eq!(on(&lists, "104.21.4.4").as_deref(), Some("cloud-ranges"));
    }

    #[test]
    fn a_missing_list_is_an_error_naming_it() {
        let error = Warninglists::load(&[PathBuf::from("/nonexistent/lists/x.txt")]).err().unwrap().to_string();
        assert!(error.contains("/nonexistent/lists/x.txt"), "{error}");
    }

    #[test]
    fn a_bad_line_names_the_file_and_line() {
        let (_dir, loaded) = lists(&[("broken.txt", "8.8.8.8\nnot an observable\n")]);
        let error = loaded.err().expect("refused").to_string();
        assert!(error.contains("broken.txt") && error.contains("line 2"), "{error}");
    }

    #[test]
    fn the_policy_says_why_a_match_is_not_reported() {
        let section = AcceptSection {
            min_confidence: 40,
            refuse_types: vec!["user-agent".into()],
            categories: vec!["phishing".into()],
            ..AcceptSection::default()
        };
        let policy = AcceptPolicy::load(&section, Path::new(".")).unwrap();
        let phishing = 1u32 << Category::Phishing.code();
        let entry = |kind, categories| Entry {
            id: RecordId([1; 32]),
            kind,
            level: 3,
            confidence: 80,
            tlp: 2,
            categories,
            valid_until: 0,
            first_seen: 0,
            last_seen: 0,
            created_at: 0,
            author: 0,
            active: true,
        };
        assert_eq!(policy.refusal(&entry(ObservableType::Domain, phishing), 80), None);
        assert!(policy.refusal(&entry(ObservableType::Domain, phishing), 39).unwrap().contains("min_confidence"));
        assert!(policy.refusal(&entry(ObservableType::UserAgent, phishing), 80).unwrap().contains("type"));
        assert!(policy.refusal(&entry(ObservableType::Domain, 0), 80).unwrap().contains("accept.categories"));
        let bad = AcceptSection { types: vec!["colour".into()], ..AcceptSection::default() };
        assert!(AcceptPolicy::load(&bad, Path::new(".")).is_err());
    }
}
