//! Each form's syntax. Every line ends in `\n`: Suricata's dataset loader
//! drops the last character of each line as its newline, so a missing final
//! newline would cut the last value short.

use super::{category_names, format_time, Blocklist, Form, Item};
use crate::interop::InteropError;
use crate::normalize::ObservableType;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Write;

/// Elements per `add element` line of the nftables form: one line per
/// element would be slow to parse, one line for a million a strain on nft.
pub const NFT_ELEMENTS_PER_LINE: usize = 1_000;
/// TTL of the response policy zone's records: short, since the list is
/// regenerated as the feed changes.
pub const RPZ_TTL_SECS: u32 = 300;
/// Formatted expiry times kept while writing CSV (cleared when full).
const FORMAT_CACHE_ENTRIES: usize = 1 << 16;
/// The nftables table the sets live in.
pub const NFT_TABLE: &str = "inet cirfed";

/// The value as `form` lists it, or `None` when the form cannot carry it.
pub(super) fn listed_value(form: Form, edl_domains: bool, kind: ObservableType, value: &str) -> Option<&str> {
    use ObservableType as T;
    let carried = match form {
        Form::Plain | Form::Csv => kind != T::KeyedHash,
        // A Suricata ipv4 set holds addresses only: a /32 network is one, wider ones are not.
        Form::SuricataIpv4 => {
            return match kind {
                T::Ipv4 => Some(value),
                T::Cidr => value.strip_suffix("/32").filter(|address| !address.contains(':')),
                _ => None,
            }
        }
        Form::SuricataDomain | Form::Rpz => kind == T::Domain,
        Form::SuricataSha256 => kind == T::Sha256,
        Form::Nftables => matches!(kind, T::Ipv4 | T::Ipv6 | T::Cidr),
        Form::Edl => match edl_domains {
            true => kind == T::Domain,
            false => matches!(kind, T::Ipv4 | T::Ipv6 | T::Cidr),
        },
    };
    carried.then_some(value)
}

/// Writes `list` in its form.
pub(super) fn write(list: &Blocklist, out: &mut dyn Write) -> Result<(), InteropError> {
    if let Some(prefix) = list.form.comment_prefix() {
        writeln!(out, "{prefix} {}", list.description())?;
    }
    match list.form {
        Form::Plain | Form::Edl | Form::SuricataIpv4 | Form::SuricataSha256 => {
            lines(list, out, |v, out| out.write_all(v.as_bytes()))
        }
        Form::SuricataDomain => lines(list, out, |v, out| out.write_all(STANDARD.encode(v).as_bytes())),
        Form::Csv => csv(list, out),
        Form::Nftables => nftables(list, out),
        Form::Rpz => rpz(list, out),
    }
}

fn lines(
    list: &Blocklist,
    out: &mut dyn Write,
    mut line: impl FnMut(&str, &mut dyn Write) -> std::io::Result<()>,
) -> Result<(), InteropError> {
    for item in &list.items {
        line(list.value(item), out)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// RFC 4180 rows, written by hand: a million rows through a general CSV
/// writer with a `String` per field missed the one-second target. Only the
/// value can hold a comma or a quote (URLs, user agents); it is quoted then.
fn csv(list: &Blocklist, out: &mut dyn Write) -> Result<(), InteropError> {
    out.write_all(b"value,type,cir_level,score,tlp,categories,valid_until,id\n")?;
    // Many indicators share an expiry time and a category set: format each once.
    let mut times: HashMap<i64, String> = HashMap::new();
    let mut categories: HashMap<u32, String> = HashMap::new();
    let mut id = [0u8; 64];
    // Each row is assembled in one buffer and written with one call.
    let mut row = String::with_capacity(256);
    for item in &list.items {
        use std::fmt::Write as _;
        row.clear();
        let value = list.value(item);
        if value.contains([',', '"']) {
            row.push('"');
            row.push_str(&value.replace('"', "\"\""));
            row.push('"');
        } else {
            row.push_str(value);
        }
        if times.len() >= FORMAT_CACHE_ENTRIES {
            times.clear();
        }
        let time = times.entry(item.valid_until).or_insert_with(|| format_time(item.valid_until));
        let names = categories.entry(item.categories).or_insert_with(|| category_names(item.categories));
        hex::encode_to_slice(item.id.0, &mut id).expect("64 hex digits for 32 bytes");
        let id = std::str::from_utf8(&id).expect("hex is ascii");
        let _ = writeln!(
            row,
            ",{},{},{},{},{names},{time},{id}",
            item.kind.as_str(),
            item.level,
            item.score,
            item.tlp.as_str()
        );
        out.write_all(row.as_bytes())?;
    }
    Ok(())
}

/// Replaces the contents of `blocklist_v4` and `blocklist_v6` in one
/// transaction (`nft -f` applies a file atomically): creating the table and
/// sets when missing, flushing them, adding the elements.
fn nftables(list: &Blocklist, out: &mut dyn Write) -> Result<(), InteropError> {
    writeln!(
        out,
        "# load with `nft -f FILE`; match from a chain of table {NFT_TABLE}, e.g. `ip daddr @blocklist_v4 drop`"
    )?;
    writeln!(out, "add table {NFT_TABLE}")?;
    for (set, family, v6) in [("blocklist_v4", "ipv4_addr", false), ("blocklist_v6", "ipv6_addr", true)] {
        writeln!(out, "add set {NFT_TABLE} {set} {{ type {family}; flags interval; }}")?;
        writeln!(out, "flush set {NFT_TABLE} {set}")?;
        let values: Vec<&str> =
            list.items.iter().filter(|item| is_v6(list, item) == v6).map(|item| list.value(item)).collect();
        for chunk in values.chunks(NFT_ELEMENTS_PER_LINE) {
            writeln!(out, "add element {NFT_TABLE} {set} {{ {} }}", chunk.join(", "))?;
        }
    }
    Ok(())
}

fn is_v6(list: &Blocklist, item: &Item) -> bool {
    list.value(item).contains(':')
}

/// An interval set refuses overlapping elements ("conflicting intervals"),
/// so addresses and networks inside a listed network go: they match anyway.
/// Two CIDR blocks are either disjoint or nested, so after sorting by start
/// (widest first) one pass finds every covered element.
pub(super) fn drop_covered(list: &mut Blocklist) {
    let span = |list: &Blocklist, item: &Item| -> Option<(bool, u128, u128)> {
        let value = list.value(item);
        let net: ipnet::IpNet = match item.kind {
            ObservableType::Cidr => value.parse().ok()?,
            _ => ipnet::IpNet::from(value.parse::<std::net::IpAddr>().ok()?),
        };
        Some(match net {
            ipnet::IpNet::V4(n) => (false, u32::from(n.network()).into(), u32::from(n.broadcast()).into()),
            ipnet::IpNet::V6(n) => (true, u128::from(n.network()), u128::from(n.broadcast())),
        })
    };
    let mut spans: Vec<(bool, u128, u128, usize)> = Vec::with_capacity(list.items.len());
    for (index, item) in list.items.iter().enumerate() {
        if let Some((v6, start, end)) = span(list, item) {
            spans.push((v6, start, end, index));
        }
    }
    spans.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(b.2.cmp(&a.2)));
    let mut keep = vec![false; list.items.len()];
    let mut covered = 0;
    let mut last: Option<(bool, u128)> = None;
    for (v6, start, end, index) in spans {
        match last {
            Some((family, last_end)) if family == v6 && start <= last_end => covered += 1,
            _ => {
                keep[index] = true;
                last = Some((v6, end));
            }
        }
    }
    let mut index = 0;
    list.items.retain(|_| {
        index += 1;
        keep[index - 1]
    });
    if covered > 0 {
        *list.summary.skipped.entry("covered_by_network".to_string()).or_default() += covered;
    }
}

/// A response policy zone: each domain and its subdomains answer NXDOMAIN
/// (`CNAME .`), as BIND and Unbound read RPZ. Names are relative to the
/// zone's origin, which the resolver's configuration gives.
fn rpz(list: &Blocklist, out: &mut dyn Write) -> Result<(), InteropError> {
    // The serial is the generation time, so resolvers transferring the zone see each regeneration as newer.
    let serial = u32::try_from(list.now.max(0)).unwrap_or(u32::MAX);
    writeln!(out, "$TTL {RPZ_TTL_SECS}")?;
    writeln!(out, "@ IN SOA localhost. hostmaster.localhost. {serial} 3600 600 86400 {RPZ_TTL_SECS}")?;
    writeln!(out, "@ IN NS localhost.")?;
    for item in &list.items {
        let domain = list.value(item);
        writeln!(out, "{domain} CNAME .")?;
        writeln!(out, "*.{domain} CNAME .")?;
    }
    Ok(())
}
