//! Blocklists for firewalls, IDS and resolvers, regenerated from the live
//! engine on every request: the values lookups would report now (accept
//! policy and warninglists applied by [`Feed::for_each_live_indicator`]),
//! narrowed by the [`Filter`], sorted and de-duplicated so the same feed
//! gives the same bytes.
//!
//! Building and writing are two steps ([`Blocklist::build`], then
//! [`Blocklist::write`]): what a list holds is known before its first byte,
//! so forms whose syntax has no comments (CSV, Suricata datasets, external
//! dynamic lists) can say it elsewhere, e.g. in an HTTP header.

mod forms;
#[cfg(test)]
mod tests;

use super::export::Summary;
use super::{Feed, Filter, InteropError, LiveIndicator};
use crate::cir::{Category, Tlp};
use crate::normalize::ObservableType;
use crate::record::RecordId;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::str::FromStr;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// IPv4 networks with a shorter prefix are left out of every list: one bad
/// `0.0.0.0/0` would otherwise block the whole Internet at every consumer.
pub const MIN_IPV4_PREFIX: u8 = 8;
/// The same floor for IPv6 networks.
pub const MIN_IPV6_PREFIX: u8 = 16;

/// A blocklist form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// One value a line, every type but keyed hashes; `#` comments.
    Plain,
    /// `value,type,cir_level,score,tlp,categories,valid_until,id` with a header row.
    Csv,
    /// A Suricata `ipv4` dataset: one address a line.
    SuricataIpv4,
    /// A Suricata `string` dataset of domains: one base64-encoded name a line.
    SuricataDomain,
    /// A Suricata `sha256` dataset: one hex digest a line.
    SuricataSha256,
    /// An nftables script replacing the contents of two interval sets
    /// (`ipv4_addr`, `ipv6_addr`), loadable with `nft -f`.
    Nftables,
    /// A BIND / Unbound response policy zone answering NXDOMAIN for each
    /// domain and its subdomains.
    Rpz,
    /// A Palo Alto / Fortinet external dynamic list: IP addresses and
    /// networks, or (with a domain-only type filter) domains.
    Edl,
}

impl Form {
    /// Every form's name.
    pub const NAMES: &'static [&'static str] =
        &["plain", "csv", "suricata-ipv4", "suricata-domain", "suricata-sha256", "nftables", "rpz", "edl"];

    /// Every form, in the order of [`Form::NAMES`].
    pub const ALL: [Form; 8] = [
        Form::Plain,
        Form::Csv,
        Form::SuricataIpv4,
        Form::SuricataDomain,
        Form::SuricataSha256,
        Form::Nftables,
        Form::Rpz,
        Form::Edl,
    ];

    /// The form's name, as in URLs and on the CLI.
    pub fn as_str(self) -> &'static str {
        Form::NAMES[Form::ALL.iter().position(|f| *f == self).expect("every form is listed")]
    }

    /// The media type an HTTP response carries.
    pub fn media_type(self) -> &'static str {
        match self {
            Form::Csv => "text/csv; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        }
    }

    /// How a comment line starts, when the form's consumers allow comment
    /// lines at all. Suricata's dataset loader parses every line as data,
    /// PAN-OS allows a comment only after an entry and FortiOS documents
    /// none, and CSV has no comment syntax: those forms carry none.
    pub fn comment_prefix(self) -> Option<&'static str> {
        match self {
            Form::Plain | Form::Nftables => Some("#"),
            Form::Rpz => Some(";"),
            Form::Csv | Form::SuricataIpv4 | Form::SuricataDomain | Form::SuricataSha256 | Form::Edl => None,
        }
    }
}

impl FromStr for Form {
    type Err = InteropError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        match Form::NAMES.iter().position(|n| *n == name) {
            Some(index) => Ok(Form::ALL[index]),
            None => Err(InteropError::invalid(
                format!("blocklist form {s:?}"),
                format!("expected one of {}", Form::NAMES.join(", ")),
            )),
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of a list, with what the CSV form reports of it. The value
/// itself lives in the list's arena, so a million values are two
/// allocations rather than a million.
#[derive(Debug, Clone)]
struct Item {
    /// The value's first eight bytes, big-endian and zero-padded: most
    /// comparisons while sorting end here, without touching the arena.
    prefix: u64,
    start: u32,
    len: u32,
    kind: ObservableType,
    level: u8,
    score: u8,
    tlp: Tlp,
    categories: u32,
    valid_until: i64,
    id: RecordId,
}

/// A blocklist, collected and sorted, ready to write.
#[derive(Debug)]
pub struct Blocklist {
    form: Form,
    filter: Filter,
    now: i64,
    /// For `edl`: domains rather than addresses.
    edl_domains: bool,
    arena: String,
    items: Vec<Item>,
    /// Values written, by type.
    by_type: BTreeMap<ObservableType, u64>,
    summary: Summary,
}

impl Blocklist {
    /// Collects the live values `form` can carry that pass `filter`.
    pub fn build(feed: &dyn Feed, form: Form, filter: &Filter, now: i64) -> Result<Blocklist, InteropError> {
        let edl_domains = form == Form::Edl && edl_wants_domains(filter)?;
        let ceiling = filter.tlp_ceiling();
        let mut list = Blocklist {
            form,
            filter: filter.clone(),
            now,
            edl_domains,
            arena: String::new(),
            items: Vec::new(),
            by_type: BTreeMap::new(),
            summary: Summary::default(),
        };
        let mut failure = None;
        feed.for_each_live_indicator(now, &mut |live: &LiveIndicator<'_>| {
            if failure.is_some() || !passes(filter, live) {
                return;
            }
            let tlp = Tlp::from_code(live.entry.tlp).unwrap_or(Tlp::Red);
            if tlp == Tlp::Red {
                return list.summary.skip("tlp_red");
            }
            if tlp > ceiling {
                return;
            }
            if live.kind == ObservableType::KeyedHash {
                return list.summary.skip("keyed_hash");
            }
            let Some(value) = forms::listed_value(form, edl_domains, live.kind, live.value) else {
                return list.summary.skip(&format!("{}_not_carried", live.kind.as_str().replace('-', "_")));
            };
            if value.bytes().any(|b| b.is_ascii_control()) {
                // Every form is one value a line; a control character would break that.
                return list.summary.skip("unsafe_value");
            }
            if too_broad(live.kind, value) {
                return list.summary.skip("network_too_broad");
            }
            match list.push(live, value, tlp) {
                Ok(()) => {}
                Err(e) => failure = Some(e),
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        list.sort_and_dedup();
        if form == Form::Nftables {
            forms::drop_covered(&mut list);
        }
        for item in &list.items {
            *list.by_type.entry(item.kind).or_default() += 1;
        }
        let total = list.items.len() as u64;
        if total > 0 {
            list.summary.exported.insert("value".to_string(), total);
        }
        Ok(list)
    }

    fn push(&mut self, live: &LiveIndicator<'_>, value: &str, tlp: Tlp) -> Result<(), InteropError> {
        let too_big = || InteropError::TooLarge {
            what: "the blocklist".to_string(),
            size: u64::MAX,
            limit: u32::MAX as u64,
            name: "u32 value offsets",
        };
        let start = u32::try_from(self.arena.len()).map_err(|_| too_big())?;
        let len = u32::try_from(value.len()).map_err(|_| too_big())?;
        self.arena.push_str(value);
        let entry = live.entry;
        let mut head = [0u8; 8];
        let n = value.len().min(8);
        head[..n].copy_from_slice(&value.as_bytes()[..n]);
        self.items.push(Item {
            prefix: u64::from_be_bytes(head),
            start,
            len,
            kind: live.kind,
            level: entry.level,
            score: live.score,
            tlp,
            categories: entry.categories,
            valid_until: entry.valid_until,
            id: entry.id,
        });
        Ok(())
    }

    /// Sorts by value; of several indicators with one value, keeps the one
    /// a consumer should see (highest level, then score, then lowest id).
    fn sort_and_dedup(&mut self) {
        let arena = self.arena.as_str();
        let value = |item: &Item| &arena[item.start as usize..(item.start + item.len) as usize];
        // Values hold no NUL (control characters are left out), so zero padding sorts as the shorter value.
        self.items.sort_unstable_by(|a, b| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| value(a).cmp(value(b)))
                .then(b.level.cmp(&a.level))
                .then(b.score.cmp(&a.score))
                .then(a.id.cmp(&b.id))
        });
        self.items.dedup_by(|later, earlier| later.prefix == earlier.prefix && value(later) == value(earlier));
    }

    fn value(&self, item: &Item) -> &str {
        &self.arena[item.start as usize..(item.start + item.len) as usize]
    }

    /// What was written and left out.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The form.
    pub fn form(&self) -> Form {
        self.form
    }

    /// Values in the list.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list holds no value.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// One line saying what the list holds, under which filter, and when it
    /// was made: the header comment of forms that allow one, and what the
    /// HTTP listener sends in `X-Cirfed-Blocklist` for every form.
    pub fn description(&self) -> String {
        let counts: Vec<String> = self.by_type.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        let contents = match counts.is_empty() {
            true => "no values".to_string(),
            false => format!(
                "{} value{} ({})",
                self.items.len(),
                if self.items.len() == 1 { "" } else { "s" },
                counts.join(", ")
            ),
        };
        let left_out: Vec<String> = self.summary.skipped.iter().map(|(why, n)| format!("{n} {why}")).collect();
        let left_out = match left_out.is_empty() {
            true => String::new(),
            false => format!("; left out: {}", left_out.join(", ")),
        };
        let edl = match (self.form, self.edl_domains) {
            (Form::Edl, true) => " of domains",
            (Form::Edl, false) => " of IP addresses and networks",
            _ => "",
        };
        format!(
            "cirfed blocklist ({}{edl}): {contents}; filter: {}{left_out}; generated {} from the live feed \
             (accept policy and warninglists applied)",
            self.form,
            describe_filter(&self.filter),
            format_time(self.now)
        )
    }

    /// Writes the list in its form.
    pub fn write(&self, out: &mut dyn Write) -> Result<(), InteropError> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        forms::write(self, &mut out)?;
        out.flush()?;
        Ok(())
    }
}

/// Writes a blocklist of the live feed.
pub fn export(
    feed: &dyn Feed,
    form: Form,
    filter: &Filter,
    now: i64,
    out: &mut dyn Write,
) -> Result<Summary, InteropError> {
    let list = Blocklist::build(feed, form, filter, now)?;
    list.write(out)?;
    Ok(list.summary)
}

/// Whether an external dynamic list should hold domains: PAN-OS and FortiOS
/// both take one kind of entry per list, so the type filter picks one.
fn edl_wants_domains(filter: &Filter) -> Result<bool, InteropError> {
    use ObservableType as T;
    if filter.types.is_empty() {
        return Ok(false);
    }
    let ips = filter.types.iter().all(|t| matches!(t, T::Ipv4 | T::Ipv6 | T::Cidr));
    let domains = filter.types.iter().all(|t| *t == T::Domain);
    match (ips, domains) {
        (true, _) => Ok(false),
        (_, true) => Ok(true),
        _ => Err(InteropError::invalid(
            "blocklist edl",
            "an external dynamic list holds one kind of entry (PAN-OS and FortiOS refuse mixed lists): \
             ask for ipv4, ipv6 and cidr types, or for domain alone",
        )),
    }
}

/// Whether a live value passes the filter's type, level, score, category
/// and time conditions (TLP is checked by the caller, to count RED).
fn passes(filter: &Filter, live: &LiveIndicator<'_>) -> bool {
    let entry = live.entry;
    (filter.types.is_empty() || filter.types.contains(&live.kind))
        && entry.level >= filter.min_level
        && live.score >= filter.min_score
        && (filter.categories == 0 || filter.categories & entry.categories != 0)
        && (filter.since == 0 || entry.created_at >= filter.since)
}

/// A network wider than the floors above.
fn too_broad(kind: ObservableType, value: &str) -> bool {
    if kind != ObservableType::Cidr || !value.contains('/') {
        return false;
    }
    match value.parse::<ipnet::IpNet>() {
        Ok(ipnet::IpNet::V4(net)) => net.prefix_len() < MIN_IPV4_PREFIX,
        Ok(ipnet::IpNet::V6(net)) => net.prefix_len() < MIN_IPV6_PREFIX,
        // The engine holds canonical values only; an unreadable one is not listed.
        Err(_) => true,
    }
}

/// The filter in words, for headers.
pub fn describe_filter(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if !filter.kinds.is_empty() {
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        parts.push(format!("kinds {}", kinds.join(",")));
    }
    if !filter.types.is_empty() {
        let types: Vec<&str> = filter.types.iter().map(|t| t.as_str()).collect();
        parts.push(format!("types {}", types.join(",")));
    }
    if filter.min_level > 0 {
        parts.push(format!("cir level >= {}", filter.min_level));
    }
    if filter.min_score > 0 {
        parts.push(format!("score >= {}", filter.min_score));
    }
    if filter.categories != 0 {
        parts.push(format!("categories {}", category_names(filter.categories)));
    }
    parts.push(format!("tlp up to {}", filter.tlp_ceiling()));
    if filter.since != 0 {
        parts.push(format!("created since {}", format_time(filter.since)));
    }
    parts.join(", ")
}

/// Category names of a bitmask, `;`-separated, in code order.
fn category_names(mask: u32) -> String {
    let names: Vec<&str> = Category::ALL
        .iter()
        .filter(|c| 1u32.checked_shl(c.code() as u32).is_some_and(|bit| mask & bit != 0))
        .map(|c| c.as_str())
        .collect();
    names.join(";")
}

/// RFC 3339 UTC, or the raw number for a time out of range.
fn format_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}
