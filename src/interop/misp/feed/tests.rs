use super::*;
use crate::interop::{LiveIndicator, Retracted};
use crate::proto::record::Body;
use crate::proto::{Indicator, Lesson, Record, Sighting};
use serde_json::Value;
use std::collections::BTreeSet;

/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;
const HOUR: i64 = 3_600;

/// A feed held in a list, in arrival order.
pub(crate) struct ListFeed(pub Vec<FeedRecord>);

impl Feed for ListFeed {
    fn records_after(&self, after: u64, limit: usize) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(self.0.iter().filter(|r| r.seq > after).take(limit).cloned().collect())
    }
    fn record(&self, id: &RecordId) -> Result<Option<FeedRecord>, InteropError> {
        Ok(self.0.iter().find(|r| r.id == *id).cloned())
    }
    fn last_seq_added_by(&self, micros: i64) -> Result<u64, InteropError> {
        Ok(self.0.iter().filter(|r| r.added_micros <= micros).map(|r| r.seq).max().unwrap_or(0))
    }
    fn last_seq(&self) -> u64 {
        self.0.last().map_or(0, |r| r.seq)
    }
    fn records_with_prefix(&self, prefix: &[u8]) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(self.0.iter().filter(|r| r.id.0.starts_with(prefix)).cloned().collect())
    }
    fn for_each_live_indicator(&self, _: i64, _: &mut dyn FnMut(&LiveIndicator<'_>)) {}
}

/// Files written through `start_file`, in order.
#[derive(Default)]
struct Files(Vec<(String, Vec<u8>)>);

impl Write for Files {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.last_mut().expect("a file was started").1.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for Files {
    fn start_file(&mut self, name: &str) -> std::io::Result<()> {
        self.0.push((name.to_string(), Vec::new()));
        Ok(())
    }
}

impl Files {
    fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
    fn text(&self, name: &str) -> String {
        let (_, bytes) = self.0.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no file {name}"));
        String::from_utf8(bytes.clone()).unwrap()
    }
    fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

fn id(n: u8) -> RecordId {
    RecordId([n; 32])
}

fn record(n: u8, member: &str, created_at: i64, tlp: Tlp, body: Body) -> FeedRecord {
    FeedRecord {
        id: id(n),
        seq: u64::from(n),
        added_micros: i64::from(n) * 1_000_000,
        record: Record { version: 1, author: vec![n; 32], created_at, tlp: tlp.code(), body: Some(body) },
        author_member: Some(member.to_string()),
        retraction: None,
        expired: false,
    }
}

fn indicator(n: u8, kind: ObservableType, value: &str, tlp: Tlp, member: &str) -> FeedRecord {
    let body = Body::Indicator(Indicator {
        r#type: i32::from(kind.code()),
        value: value.to_string(),
        cir_level: 4,
        categories: vec![crate::cir::Category::Malware.code()],
        confidence: 70,
        valid_until: NOW + 30 * 86_400,
        tags: vec!["c2".to_string(), "tlp:red".to_string()],
        description: format!("seen in incident {n}"),
        ..Indicator::default()
    });
    record(n, member, NOW - 100 * HOUR + i64::from(n) * HOUR, tlp, body)
}

fn lesson(n: u8, member: &str, refs: &[u8]) -> FeedRecord {
    let body = Body::Lesson(Lesson {
        title: format!("Lesson {n}"),
        summary: "Keys leaked, instances mined.".to_string(),
        cir_level: 3,
        categories: vec![crate::cir::Category::CredentialTheft.code()],
        went_well: vec!["billing alert".to_string()],
        time_to_detect_secs: 5 * 3_600 + 20 * 60,
        indicator_refs: refs.iter().map(|&r| id(r).0.to_vec()).collect(),
        ..Lesson::default()
    });
    record(n, member, NOW - 50 * HOUR + i64::from(n) * HOUR, Tlp::Green, body)
}

fn sighting(n: u8, member: &str, target: u8, kind: crate::cir::SightingType, count: u32, tlp: Tlp) -> FeedRecord {
    let body = Body::Sighting(Sighting { indicator_id: id(target).0.to_vec(), r#type: kind.code(), count });
    record(n, member, NOW - 40 * HOUR + i64::from(n) * HOUR, tlp, body)
}

const SHA256: &str = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68";

/// Two lessons sharing an indicator, indicators without a lesson (one
/// retracted), one each of what MISP cannot carry, and sightings.
fn feed() -> ListFeed {
    use crate::cir::SightingType as S;
    use ObservableType as T;
    let mut retracted = indicator(6, T::Url, "http://bad.example/x", Tlp::Green, "m-b");
    retracted.retraction = Some(Retracted { id: id(99), at: NOW - 2 * HOUR, reason: "false positive".into() });
    ListFeed(vec![
        indicator(1, T::Ipv4, "198.51.100.7", Tlp::Green, "m-a"),
        indicator(2, T::Domain, "bad.example", Tlp::Amber, "m-a"),
        indicator(3, T::Sha256, SHA256, Tlp::Clear, "m-b"),
        indicator(4, T::KeyedHash, &"c".repeat(64), Tlp::Green, "m-b"),
        indicator(5, T::Domain, "red.example", Tlp::Red, "m-b"),
        retracted,
        indicator(7, T::CloudAccessKeyId, "AKIAIOSFODNN7EXAMPLE", Tlp::Green, "m-b"),
        indicator(8, T::Asn, "AS64496", Tlp::Green, "m-b"),
        lesson(10, "m-a", &[1, 2, 1]),
        lesson(11, "m-b", &[1]),
        sighting(20, "m-b", 1, S::Seen, 3, Tlp::Green),
        sighting(21, "m-a", 3, S::FalsePositive, 1, Tlp::Green),
        sighting(22, "m-a", 1, S::Seen, 1, Tlp::Red),
    ])
}

fn export_files(feed: &ListFeed, filter: &Filter) -> (Files, Summary) {
    let mut files = Files::default();
    let summary = export(feed, filter, NOW, &mut files).unwrap();
    (files, summary)
}

fn uuid_of(n: u8) -> String {
    ids::record_uuid(&id(n)).hyphenated().to_string()
}

fn rolling() -> String {
    ids::named_uuid("cirfed/misp-rolling", ROLLING_NAME).hyphenated().to_string()
}

fn attributes(event: &Value) -> &Vec<Value> {
    event["Event"]["Attribute"].as_array().unwrap()
}

fn tag_names(tags: &Value) -> Vec<&str> {
    tags.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
}

#[test]
fn the_feed_is_hashes_then_one_event_per_lesson_then_the_rolling_event_then_the_manifest() {
    let (files, summary) = export_files(&feed(), &Filter::default());
    let (l10, l11, rolling) = (format!("{}.json", uuid_of(10)), format!("{}.json", uuid_of(11)), rolling());
    assert_eq!(files.names(), ["hashes.csv", l10.as_str(), l11.as_str(), &format!("{rolling}.json"), "manifest.json"]);
    let count = |map: &std::collections::BTreeMap<String, u64>, key: &str| map.get(key).copied().unwrap_or(0);
    assert_eq!(count(&summary.exported, "event"), 3);
    // 198.51.100.7 in two lessons is one attribute by record; the AS number and the hash are the others.
    assert_eq!(count(&summary.exported, "attribute"), 4);
    assert_eq!(count(&summary.exported, "deleted_attribute"), 1);
    assert_eq!(count(&summary.exported, "sighting"), 2);
    assert_eq!(count(&summary.skipped, "keyed_hash"), 1);
    assert_eq!(count(&summary.skipped, "tlp_red"), 1);
    assert_eq!(count(&summary.skipped, "no_misp_type"), 1);
}

#[test]
fn a_lesson_event_carries_its_indicators_sightings_tags_and_the_lesson_as_a_report() {
    let (files, _) = export_files(&feed(), &Filter::default());
    let event = files.json(&format!("{}.json", uuid_of(10)));
    let e = &event["Event"];
    assert_eq!(e["uuid"], uuid_of(10));
    assert_eq!(e["info"], "Lesson 10");
    assert_eq!(e["analysis"], "2");
    assert_eq!(e["threat_level_id"], "2", "CIR level 3 is MISP medium");
    assert_eq!(e["Orgc"]["name"], "m-a");
    assert_eq!(e["Orgc"]["uuid"], ids::named_uuid("cirfed/identity", "m-a").hyphenated().to_string());
    assert_eq!(tag_names(&e["Tag"]), ["tlp:green", "cirfed:cir-level=\"3\"", "cirfed:category=\"credential-theft\""]);
    let attrs = attributes(&event);
    assert_eq!(attrs.len(), 2, "the repeated reference is one attribute");
    let ip = &attrs[0];
    assert_eq!(ip["uuid"], uuid_of(1));
    assert_eq!((ip["type"].as_str(), ip["category"].as_str()), (Some("ip-dst"), Some("Network activity")));
    assert_eq!((ip["value"].as_str(), ip["to_ids"].as_bool()), (Some("198.51.100.7"), Some(true)));
    assert_eq!(ip["comment"], "seen in incident 1");
    assert_eq!(ip["timestamp"], (NOW - 99 * HOUR).to_string());
    // The free tag that poses as a marking is dropped; the member who published it is named.
    assert_eq!(
        tag_names(&ip["Tag"]),
        ["tlp:green", "cirfed:cir-level=\"4\"", "cirfed:category=\"malware\"", "c2", "cirfed:member=\"m-a\""]
    );
    let sightings = ip["Sighting"].as_array().unwrap();
    assert_eq!(sightings.len(), 1, "the RED sighting stays home");
    assert_eq!(sightings[0]["type"], "0");
    assert_eq!(sightings[0]["source"], "cirfed (count 3)");
    assert_eq!(sightings[0]["uuid"], uuid_of(20));
    assert_eq!(sightings[0]["attribute_uuid"], uuid_of(1));
    assert_eq!(sightings[0]["Organisation"]["name"], "m-b");
    assert_eq!(attrs[1]["uuid"], uuid_of(2));
    assert_eq!(tag_names(&attrs[1]["Tag"])[0], "tlp:amber");
    // Its newest change is the sighting of 198.51.100.7.
    assert_eq!(e["timestamp"], (NOW - 20 * HOUR).to_string());
    let report = &e["EventReport"][0];
    assert_eq!(report["name"], "Lesson 10");
    let content = report["content"].as_str().unwrap();
    assert!(content.starts_with("# Lesson 10\n\nKeys leaked, instances mined.\n"), "{content}");
    assert!(
        content.contains("- Time to detect: 5h 20m\n") && content.contains("## What went well\n\n- billing alert\n")
    );
}

#[test]
fn an_indicator_in_two_lessons_has_its_own_uuid_only_in_the_first() {
    let (files, _) = export_files(&feed(), &Filter::default());
    let second = files.json(&format!("{}.json", uuid_of(11)));
    let attrs = attributes(&second);
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0]["value"], "198.51.100.7");
    assert_ne!(attrs[0]["uuid"], uuid_of(1));
    assert_ne!(attrs[0]["Sighting"][0]["uuid"], uuid_of(20));
    assert_eq!(attrs[0]["Sighting"][0]["attribute_uuid"], attrs[0]["uuid"]);
}

#[test]
fn the_rolling_event_holds_the_rest_and_keeps_a_retracted_one_as_deleted() {
    let (files, _) = export_files(&feed(), &Filter::default());
    let event = files.json(&format!("{}.json", rolling()));
    let e = &event["Event"];
    assert_eq!(e["threat_level_id"], "4");
    assert_eq!(e["Orgc"]["name"], "cirfed");
    // CLEAR is the least restrictive marking among its attributes.
    assert_eq!(tag_names(&e["Tag"]), ["tlp:clear", "tlp:white"]);
    let values: Vec<&str> = attributes(&event).iter().map(|a| a["value"].as_str().unwrap()).collect();
    assert_eq!(values, [SHA256, "http://bad.example/x", "64496"]);
    let deleted = &attributes(&event)[1];
    assert_eq!((deleted["deleted"].as_bool(), deleted["to_ids"].as_bool()), (Some(true), Some(false)));
    assert_eq!(deleted["timestamp"], (NOW - 2 * HOUR).to_string(), "the time of the retraction");
    assert_eq!(attributes(&event)[0]["Sighting"][0]["type"], "1", "a false positive");
    assert_eq!(attributes(&event)[2]["type"], "AS");
    assert_eq!(e["timestamp"], (NOW - 2 * HOUR).to_string());
}

#[test]
fn the_manifest_lists_every_event_with_pymisp_fields_and_matching_timestamps() {
    let (files, _) = export_files(&feed(), &Filter::default());
    let manifest = files.json("manifest.json");
    let keys: BTreeSet<&str> = manifest.as_object().unwrap().keys().map(String::as_str).collect();
    let rolling = rolling();
    assert_eq!(keys, BTreeSet::from([uuid_of(10).as_str(), uuid_of(11).as_str(), rolling.as_str()]));
    for (uuid, entry) in manifest.as_object().unwrap() {
        let event = files.json(&format!("{uuid}.json"));
        let e = &event["Event"];
        let fields: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, BTreeSet::from(["Orgc", "Tag", "analysis", "date", "info", "threat_level_id", "timestamp"]));
        assert_eq!(entry["timestamp"].as_i64().unwrap().to_string(), e["timestamp"].as_str().unwrap(), "{uuid}");
        assert_eq!(entry["threat_level_id"].as_i64().unwrap().to_string(), e["threat_level_id"].as_str().unwrap());
        assert_eq!(
            (&entry["info"], &entry["date"], &entry["Orgc"], &entry["Tag"]),
            (&e["info"], &e["date"], &e["Orgc"], &e["Tag"])
        );
    }
}

#[test]
fn hashes_csv_lists_the_md5_of_every_live_attribute_with_its_event() {
    let (files, _) = export_files(&feed(), &Filter::default());
    let listed: BTreeSet<String> = files.text("hashes.csv").lines().map(str::to_string).collect();
    let mut expected = BTreeSet::new();
    for (uuid, _) in files.json("manifest.json").as_object().unwrap() {
        for attribute in attributes(&files.json(&format!("{uuid}.json"))) {
            if attribute["deleted"] == true {
                continue;
            }
            let value = attribute["value"].as_str().unwrap();
            expected.insert(format!("{},{uuid}", hex::encode(Md5::digest(value.as_bytes()))));
        }
    }
    assert_eq!(listed, expected);
    assert_eq!(listed.len(), 5, "198.51.100.7 twice (two events), bad.example, the hash, the AS number");
}

#[test]
fn composite_values_are_hashed_part_by_part() {
    assert_eq!(json::hashed_parts("ip-dst|port", "198.51.100.7|443"), ["198.51.100.7", "443"]);
    assert_eq!(json::hashed_parts("url", "http://a.example/?x=1|2"), ["http://a.example/?x=1|2"]);
}

#[test]
fn the_filter_narrows_events_and_attributes() {
    // TLP: AMBER stays out of a GREEN feed.
    let green = Filter { max_tlp: Some(Tlp::Green), ..Filter::default() };
    let (files, _) = export_files(&feed(), &green);
    assert_eq!(attributes(&files.json(&format!("{}.json", uuid_of(10)))).len(), 1);
    // Without lessons, every indicator is in the rolling event.
    let indicators = Filter { kinds: vec![RecordKind::Indicator], ..Filter::default() };
    let (files, summary) = export_files(&feed(), &indicators);
    assert_eq!(files.names(), ["hashes.csv", &format!("{}.json", rolling()), "manifest.json"]);
    let event = files.json(&format!("{}.json", rolling()));
    assert_eq!(attributes(&event).len(), 5);
    assert!(attributes(&event).iter().all(|a| a.get("Sighting").is_none()), "sightings are a kind of their own");
    assert_eq!(summary.exported.get("sighting"), None);
    // Types, level and time.
    let domains = Filter { types: vec![ObservableType::Domain], ..Filter::default() };
    let (files, _) = export_files(&feed(), &domains);
    assert!(!files.names().contains(&format!("{}.json", rolling()).as_str()), "no attribute, no rolling event");
    let lessons_only = Filter { min_level: 4, ..Filter::default() };
    let (files, _) = export_files(&feed(), &lessons_only);
    assert!(!files.names().contains(&format!("{}.json", uuid_of(10)).as_str()), "the lessons are level 3");
    let recent = Filter { since: NOW - 93 * HOUR, ..Filter::default() };
    let (files, _) = export_files(&feed(), &recent);
    let values: Vec<String> = attributes(&files.json(&format!("{}.json", rolling())))
        .iter()
        .map(|a| a["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(values, ["64496"]);
}

#[test]
fn a_removal_older_than_the_kept_window_leaves_the_feed() {
    let mut feed = feed();
    feed.0[5].retraction.as_mut().unwrap().at = NOW - REMOVED_KEPT_SECS - 1;
    let (files, _) = export_files(&feed, &Filter::default());
    let event = files.json(&format!("{}.json", rolling()));
    let values: Vec<&str> = attributes(&event).iter().map(|a| a["value"].as_str().unwrap()).collect();
    assert_eq!(values, [SHA256, "64496"]);
}

#[test]
fn the_same_feed_exports_the_same_bytes_and_each_file_is_served_alone_identically() {
    let feed = feed();
    let (first, _) = export_files(&feed, &Filter::default());
    let (second, _) = export_files(&feed, &Filter::default());
    assert_eq!(first.0, second.0);
    let misp = MispFeed::open(&feed, &Filter::default(), NOW).unwrap();
    let mut manifest = Vec::new();
    misp.write_manifest(&mut manifest).unwrap();
    assert_eq!(String::from_utf8(manifest).unwrap(), first.text("manifest.json"));
    let mut hashes = Vec::new();
    misp.write_hashes(&mut hashes).unwrap();
    assert_eq!(String::from_utf8(hashes).unwrap(), first.text("hashes.csv"));
    for uuid in [uuid_of(10), uuid_of(11), rolling()] {
        let uuid = Uuid::parse_str(&uuid).unwrap();
        assert!(misp.has_event(&uuid).unwrap());
        let mut event = Vec::new();
        assert!(misp.write_event(&uuid, &mut event).unwrap());
        assert_eq!(String::from_utf8(event).unwrap(), first.text(&format!("{uuid}.json")));
    }
    let unknown = Uuid::parse_str(&uuid_of(1)).unwrap();
    let mut nothing = Vec::new();
    assert!(!misp.has_event(&unknown).unwrap());
    assert!(!misp.write_event(&unknown, &mut nothing).unwrap());
    assert!(nothing.is_empty());
}

#[test]
fn a_min_score_filter_is_refused_rather_than_ignored() {
    let filter = Filter { min_score: 50, ..Filter::default() };
    let error = export(&feed(), &filter, NOW, &mut Files::default()).unwrap_err();
    assert!(error.to_string().contains("min-score"), "{error}");
}
