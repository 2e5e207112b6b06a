use super::*;
use crate::interop::{FeedRecord, LiveIndicator};
use crate::lookup::Entry;
use crate::normalize;
use proptest::prelude::*;

/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;
/// 2026-02-01T00:00:00Z.
const VALID_UNTIL: i64 = NOW + 31 * 86_400;

/// The live values of a feed, as the engine would hand them out.
struct LiveFeed(Vec<(String, Entry, u8)>);

impl Feed for LiveFeed {
    fn records_after(&self, _: u64, _: usize) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(Vec::new())
    }
    fn record(&self, _: &RecordId) -> Result<Option<FeedRecord>, InteropError> {
        Ok(None)
    }
    fn last_seq_added_by(&self, _: i64) -> Result<u64, InteropError> {
        Ok(0)
    }
    fn last_seq(&self) -> u64 {
        0
    }
    fn records_with_prefix(&self, _: &[u8]) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(Vec::new())
    }
    fn for_each_live_indicator(&self, _: i64, visit: &mut dyn FnMut(&LiveIndicator<'_>)) {
        for (value, entry, score) in &self.0 {
            visit(&LiveIndicator { value, kind: entry.kind, entry, score: *score });
        }
    }
}

fn entry(id: u8, kind: ObservableType, level: u8, tlp: Tlp, categories: &[Category]) -> Entry {
    Entry {
        id: RecordId([id; 32]),
        kind,
        level,
        confidence: 50,
        tlp: tlp.code(),
        categories: categories.iter().fold(0, |mask, c| mask | 1 << c.code()),
        valid_until: VALID_UNTIL,
        first_seen: 0,
        last_seen: 0,
        created_at: NOW - 3_600,
        author: 0,
        active: true,
    }
}

fn feed() -> LiveFeed {
    use ObservableType as T;
    let row = |value: &str, id: u8, kind: T, level: u8, score: u8, tlp: Tlp, categories: &[Category]| {
        (value.to_string(), entry(id, kind, level, tlp, categories), score)
    };
    LiveFeed(vec![
        row("198.51.100.7", 1, T::Ipv4, 4, 80, Tlp::Green, &[Category::Malware]),
        // The same value from another member, at a lower level: listed once, as the first.
        row("198.51.100.7", 2, T::Ipv4, 2, 90, Tlp::Green, &[]),
        row("198.51.100.0/24", 3, T::Cidr, 3, 60, Tlp::Amber, &[]),
        row("203.0.113.9/32", 4, T::Cidr, 3, 50, Tlp::Green, &[]),
        row("2001:db8::7", 5, T::Ipv6, 3, 50, Tlp::Clear, &[]),
        row("2001:db8::/32", 6, T::Cidr, 3, 50, Tlp::Green, &[]),
        row("0.0.0.0/0", 7, T::Cidr, 3, 50, Tlp::Green, &[]),
        row("bad.example", 8, T::Domain, 5, 70, Tlp::Green, &[Category::Phishing, Category::CredentialTheft]),
        row("evil.example", 9, T::Domain, 3, 40, Tlp::AmberStrict, &[]),
        row("http://bad.example/a", 10, T::Url, 3, 50, Tlp::Green, &[]),
        row(&"a".repeat(64), 11, T::Sha256, 3, 50, Tlp::Green, &[Category::Malware]),
        row(&"b".repeat(64), 12, T::KeyedHash, 3, 50, Tlp::Green, &[]),
        row("red.example", 13, T::Domain, 5, 90, Tlp::Red, &[]),
        row("curl/7\u{1}x", 14, T::UserAgent, 3, 50, Tlp::Green, &[]),
    ])
}

fn text(form: Form, filter: &Filter) -> String {
    let mut out = Vec::new();
    export(&feed(), form, filter, NOW, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn id(n: u8) -> String {
    RecordId([n; 32]).to_hex()
}

const GENERATED: &str = "generated 2026-01-01T00:00:00Z from the live feed (accept policy and warninglists applied)";

#[test]
fn plain_lists_every_type_but_keyed_hashes_sorted_once_each_under_a_header() {
    let expected = format!(
        "# cirfed blocklist (plain): 9 values (1 ipv4, 1 ipv6, 3 cidr, 2 domain, 1 url, 1 sha256); filter: tlp up to \
         amber+strict; left out: 1 keyed_hash, 1 network_too_broad, 1 tlp_red, 1 unsafe_value; {GENERATED}\n\
         198.51.100.0/24\n198.51.100.7\n2001:db8::/32\n2001:db8::7\n203.0.113.9/32\n{}\nbad.example\nevil.example\n\
         http://bad.example/a\n",
        "a".repeat(64)
    );
    assert_eq!(text(Form::Plain, &Filter::default()), expected);
}

#[test]
fn csv_has_a_header_row_and_the_strongest_indicator_of_each_value() {
    let filter = Filter { types: vec![ObservableType::Ipv4, ObservableType::Domain], ..Filter::default() };
    let expected = format!(
        "value,type,cir_level,score,tlp,categories,valid_until,id\n\
         198.51.100.7,ipv4,4,80,green,malware,2026-02-01T00:00:00Z,{}\n\
         bad.example,domain,5,70,green,phishing;credential-theft,2026-02-01T00:00:00Z,{}\n\
         evil.example,domain,3,40,amber+strict,,2026-02-01T00:00:00Z,{}\n",
        id(1),
        id(8),
        id(9)
    );
    assert_eq!(text(Form::Csv, &filter), expected);
}

#[test]
fn suricata_datasets_hold_bare_values_without_comments() {
    assert_eq!(text(Form::SuricataIpv4, &Filter::default()), "198.51.100.7\n203.0.113.9\n");
    // Suricata's string datasets are base64, one value a line.
    assert_eq!(text(Form::SuricataDomain, &Filter::default()), "YmFkLmV4YW1wbGU=\nZXZpbC5leGFtcGxl\n");
    assert_eq!(text(Form::SuricataSha256, &Filter::default()), format!("{}\n", "a".repeat(64)));
}

#[test]
fn suricata_ipv4_leaves_networks_out_with_a_count() {
    let list = Blocklist::build(&feed(), Form::SuricataIpv4, &Filter::default(), NOW).unwrap();
    let skipped = &list.summary().skipped;
    // 198.51.100.0/24, 2001:db8::/32 and 0.0.0.0/0 are networks; the /32 is an address.
    assert_eq!(skipped.get("cidr_not_carried"), Some(&3));
    assert_eq!(skipped.get("domain_not_carried"), Some(&2));
    assert_eq!(skipped.get("tlp_red"), Some(&1));
    assert_eq!(list.summary().exported.get("value"), Some(&2));
}

#[test]
fn nftables_replaces_two_interval_sets_in_one_script_without_covered_elements() {
    // 198.51.100.7 lies in 198.51.100.0/24 and 2001:db8::7 in 2001:db8::/32: an interval
    // set refuses overlapping elements, and the networks match them anyway.
    let expected = format!(
        "# cirfed blocklist (nftables): 3 values (3 cidr); filter: tlp up to amber+strict; left out: \
         2 covered_by_network, 2 domain_not_carried, 1 keyed_hash, 1 network_too_broad, 1 sha256_not_carried, \
         1 tlp_red, 1 url_not_carried, 1 user_agent_not_carried; {GENERATED}\n\
         # load with `nft -f FILE`; match from a chain of table inet cirfed, e.g. `ip daddr @blocklist_v4 drop`\n\
         add table inet cirfed\n\
         add set inet cirfed blocklist_v4 {{ type ipv4_addr; flags interval; }}\n\
         flush set inet cirfed blocklist_v4\n\
         add element inet cirfed blocklist_v4 {{ 198.51.100.0/24, 203.0.113.9/32 }}\n\
         add set inet cirfed blocklist_v6 {{ type ipv6_addr; flags interval; }}\n\
         flush set inet cirfed blocklist_v6\n\
         add element inet cirfed blocklist_v6 {{ 2001:db8::/32 }}\n"
    );
    assert_eq!(text(Form::Nftables, &Filter::default()), expected);
}

#[test]
fn rpz_blocks_each_domain_and_its_subdomains() {
    let expected = format!(
        "; cirfed blocklist (rpz): 2 values (2 domain); filter: tlp up to amber+strict; left out: 4 cidr_not_carried, \
         2 ipv4_not_carried, 1 ipv6_not_carried, 1 keyed_hash, 1 sha256_not_carried, 1 tlp_red, 1 url_not_carried, \
         1 user_agent_not_carried; {GENERATED}\n\
         $TTL 300\n\
         @ IN SOA localhost. hostmaster.localhost. {NOW} 3600 600 86400 300\n\
         @ IN NS localhost.\n\
         bad.example CNAME .\n*.bad.example CNAME .\nevil.example CNAME .\n*.evil.example CNAME .\n"
    );
    assert_eq!(text(Form::Rpz, &Filter::default()), expected);
}

#[test]
fn edl_holds_addresses_by_default_and_domains_when_asked_never_both() {
    assert_eq!(
        text(Form::Edl, &Filter::default()),
        "198.51.100.0/24\n198.51.100.7\n2001:db8::/32\n2001:db8::7\n203.0.113.9/32\n"
    );
    let domains = Filter { types: vec![ObservableType::Domain], ..Filter::default() };
    assert_eq!(text(Form::Edl, &domains), "bad.example\nevil.example\n");
    let mixed = Filter { types: vec![ObservableType::Domain, ObservableType::Ipv4], ..Filter::default() };
    let err = Blocklist::build(&feed(), Form::Edl, &mixed, NOW).unwrap_err();
    assert!(err.to_string().contains("one kind of entry"), "{err}");
}

#[test]
fn forms_without_comment_syntax_still_describe_themselves() {
    let list = Blocklist::build(&feed(), Form::Edl, &Filter::default(), NOW).unwrap();
    assert_eq!(
        list.description(),
        format!(
            "cirfed blocklist (edl of IP addresses and networks): 5 values (1 ipv4, 1 ipv6, 3 cidr); filter: tlp up \
             to amber+strict; left out: 2 domain_not_carried, 1 keyed_hash, 1 network_too_broad, 1 sha256_not_carried, \
             1 tlp_red, 1 url_not_carried, 1 user_agent_not_carried; {GENERATED}"
        )
    );
}

#[test]
fn filters_narrow_by_level_score_category_tlp_and_type() {
    let values = |filter: Filter| {
        let list = Blocklist::build(&feed(), Form::Plain, &filter, NOW).unwrap();
        list.items.iter().map(|item| list.value(item).to_string()).collect::<Vec<_>>()
    };
    assert_eq!(values(Filter { min_level: 4, ..Filter::default() }), ["198.51.100.7", "bad.example"]);
    assert_eq!(values(Filter { min_score: 70, ..Filter::default() }), ["198.51.100.7", "bad.example"]);
    let malware = Filter { categories: 1 << Category::Malware.code(), ..Filter::default() };
    assert_eq!(values(malware), ["198.51.100.7".to_string(), "a".repeat(64)]);
    let clear = Filter { max_tlp: Some(Tlp::Clear), ..Filter::default() };
    assert_eq!(values(clear), ["2001:db8::7"]);
    let url = Filter { types: vec![ObservableType::Url], ..Filter::default() };
    assert_eq!(values(url), ["http://bad.example/a"]);
    // RED is never listed, whatever the filter asks.
    let red = Filter { max_tlp: Some(Tlp::Red), types: vec![ObservableType::Domain], ..Filter::default() };
    assert_eq!(values(red), ["bad.example", "evil.example"]);
}

#[test]
fn an_empty_feed_gives_a_list_that_says_so() {
    let mut out = Vec::new();
    let summary = export(&LiveFeed(Vec::new()), Form::Plain, &Filter::default(), NOW, &mut out).unwrap();
    assert_eq!(summary, Summary::default());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("# cirfed blocklist (plain): no values; filter: tlp up to amber+strict; {GENERATED}\n")
    );
}

#[test]
fn form_names_parse_and_print_back() {
    for form in Form::ALL {
        assert_eq!(form.as_str().parse::<Form>().unwrap(), form);
        assert_eq!(form.to_string(), form.as_str());
    }
    let err = "iptables".parse::<Form>().unwrap_err();
    assert!(err.to_string().contains("plain, csv, suricata-ipv4"), "{err}");
}

/// Raw observables of the types blocklists carry, canonicalised by the
/// normaliser as publishing would.
fn canonical() -> impl Strategy<Value = (ObservableType, String)> {
    use ObservableType as T;
    let label = "[a-z][a-z0-9-]{0,8}[a-z0-9]";
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| (T::Ipv4, std::net::Ipv4Addr::from(b).to_string())),
        (any::<[u8; 4]>(), 8u8..=32).prop_map(|(b, len)| (T::Cidr, format!("{}/{len}", std::net::Ipv4Addr::from(b)))),
        any::<[u16; 8]>().prop_map(|s| (T::Ipv6, std::net::Ipv6Addr::from(s).to_string())),
        (label, label).prop_map(|(a, b)| (T::Domain, format!("{a}.{b}.Example"))),
        "[0-9a-fA-F]{64}".prop_map(|h| (T::Sha256, h)),
    ]
    .prop_filter_map("normalisable", |(kind, raw)| normalize::normalize(kind, &raw).ok().map(|v| (kind, v)))
}

proptest! {
    #[test]
    fn listed_values_read_back_through_the_normaliser_unchanged(
        values in proptest::collection::vec(canonical(), 1..40)
    ) {
        let rows = values
            .iter()
            .enumerate()
            .map(|(n, (kind, value))| (value.clone(), entry(n as u8, *kind, 3, Tlp::Green, &[]), 50))
            .collect();
        let feed = LiveFeed(rows);
        for form in [Form::Plain, Form::SuricataDomain, Form::SuricataSha256, Form::Rpz, Form::Edl] {
            let mut out = Vec::new();
            export(&feed, form, &Filter::default(), NOW, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for line in text.lines().filter(|l| !l.starts_with(['#', ';', '$', '@', '*'])) {
                let value = match form {
                    Form::SuricataDomain => String::from_utf8(STANDARD.decode(line).unwrap()).unwrap(),
                    Form::Rpz => line.strip_suffix(" CNAME .").unwrap().to_string(),
                    _ => line.to_string(),
                };
                let kind = values.iter().find(|(_, v)| *v == value).map(|(k, _)| *k);
                prop_assert!(kind.is_some(), "{form}: {value:?} was not published");
                prop_assert_eq!(normalize::normalize(kind.unwrap(), &value).unwrap(), value);
            }
        }
    }
}

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
