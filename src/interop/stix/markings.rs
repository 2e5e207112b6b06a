//! The fixed objects of cirfed's STIX: TLP marking definitions (2.0 written,
//! 1.0 and 2.0 read), cirfed's extension-definition for its `x_cirfed_*`
//! properties, the identity that defines it, and the federation authority's
//! identity for records signed by the authority or an unknown key.

use super::ids::named_uuid;
use super::objects::ObjectId;
use super::time::Timestamp;
use crate::cir::Tlp;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use uuid::Uuid;

/// The OASIS TLP 2.0 extension that TLP 2.0 marking definitions use.
pub const TLP2_EXTENSION_ID: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";
/// `created` of every TLP 2.0 marking definition (OASIS cti-stix-common-objects).
const TLP2_CREATED: &str = "2022-10-01T00:00:00.000Z";

/// TLP 2.0 marking definitions: (TLP, id, name, `tlp_2_0` value). RED is
/// listed for reading only: a RED record is never exported.
const TLP2: [(Tlp, &str, &str, &str); 5] = [
    (Tlp::Clear, "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR", "clear"),
    (Tlp::Green, "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN", "green"),
    (Tlp::Amber, "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER", "amber"),
    (Tlp::AmberStrict, "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "TLP:AMBER+STRICT", "amber+strict"),
    (Tlp::Red, "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED", "red"),
];

/// TLP 1.0 marking definitions, predefined by the STIX 2.1 specification
/// (section 7.2.1.4); read only. WHITE reads as CLEAR.
const TLP1: [(Tlp, &str); 4] = [
    (Tlp::Clear, "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"),
    (Tlp::Green, "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"),
    (Tlp::Amber, "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"),
    (Tlp::Red, "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"),
];

/// The TLPs a bundle may carry, least restrictive first.
pub const EXPORTABLE_TLPS: [Tlp; 4] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict];

/// The TLP 2.0 marking id for `tlp`.
pub fn marking_id(tlp: Tlp) -> &'static str {
    TLP2.iter().find(|(t, ..)| *t == tlp).map(|(_, id, ..)| *id).expect("every TLP has a 2.0 marking")
}

/// The TLP of a standard marking id, TLP 1.0 or 2.0.
pub fn tlp_of_marking(id: &str) -> Option<Tlp> {
    let tlp2 = TLP2.iter().find(|(_, known, ..)| *known == id).map(|(tlp, ..)| *tlp);
    tlp2.or_else(|| TLP1.iter().find(|(_, known)| *known == id).map(|(tlp, _)| *tlp))
}

/// cirfed's extension-definition (`ids::named_uuid("cirfed/extension-definition", "cirfed-v1")`).
pub const EXTENSION_ID: &str = "extension-definition--e5538851-e2d0-4495-8ed2-f3a5eccc9bc0";
/// The identity that defines cirfed's extension (`named_uuid("cirfed/fixed-identity", "cirfed")`).
pub const CIRFED_IDENTITY: ObjectId =
    ObjectId::new("identity", Uuid::from_u128(0x0c11d363_41a6_4df6_85b9_8ebed5dd0d38));
/// The federation authority's identity (`named_uuid("cirfed/fixed-identity", "cirfed federation authority")`).
pub const AUTHORITY_IDENTITY: ObjectId =
    ObjectId::new("identity", Uuid::from_u128(0xa285ece4_1414_4183_934e_2a08f6d22153));
/// Name of the authority's identity.
pub const AUTHORITY_NAME: &str = "cirfed federation authority";
/// `created` and `modified` of cirfed's own fixed objects, before any record.
pub const FIXED_CREATED: Timestamp = Timestamp(1_735_689_600_000); // 2025-01-01T00:00:00.000Z

/// Every custom property cirfed writes, as the extension-definition lists them.
pub const EXTENSION_PROPERTIES: [&str; 17] = [
    "x_cirfed_cir_level",
    "x_cirfed_categories",
    "x_cirfed_observable_type",
    "x_cirfed_incident_ref",
    "x_cirfed_first_seen",
    "x_cirfed_last_seen",
    "x_cirfed_service_model",
    "x_cirfed_detection_method",
    "x_cirfed_time_to_detect_secs",
    "x_cirfed_time_to_contain_secs",
    "x_cirfed_time_to_recover_secs",
    "x_cirfed_root_cause",
    "x_cirfed_went_well",
    "x_cirfed_to_improve",
    "x_cirfed_recommended_actions",
    "x_cirfed_sighting_type",
    "x_cirfed_retraction_reason",
];

/// The extension's schema, as text (STIX allows a URL or a plain-text definition).
const EXTENSION_SCHEMA: &str = "Top-level properties of cirfed records. Indicators: x_cirfed_cir_level (integer \
    1-5, the CIR incident level), x_cirfed_categories (list of CIR category names), x_cirfed_observable_type \
    (cirfed observable type when STIX has no object for it, e.g. cloud-access-key-id), x_cirfed_incident_ref \
    (opaque incident reference), x_cirfed_first_seen and x_cirfed_last_seen (timestamps). Reports (post-mortems): x_cirfed_cir_level, \
    x_cirfed_categories, x_cirfed_service_model (iaas, paas, saas), x_cirfed_detection_method, \
    x_cirfed_time_to_detect_secs, x_cirfed_time_to_contain_secs, x_cirfed_time_to_recover_secs (integers), \
    x_cirfed_root_cause, x_cirfed_went_well and x_cirfed_to_improve (lists of text), \
    x_cirfed_recommended_actions (list of {phase, action}; phases preparation, detection, containment, \
    post-mortem, coordination). Sightings: x_cirfed_sighting_type (false-positive or expired; absent for a \
    plain sighting). Revoked versions: x_cirfed_retraction_reason (why the author withdrew the record).";

/// `"extensions": {"<cirfed extension>": {"extension_type": "toplevel-property-extension"}}`,
/// on every object that carries `x_cirfed_*` properties (stix2-validator check 401).
#[derive(Debug, Clone, Copy, Default)]
pub struct CirfedExtension;

impl Serialize for CirfedExtension {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry {
            extension_type: &'static str,
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(EXTENSION_ID, &Entry { extension_type: "toplevel-property-extension" })?;
        map.end()
    }
}

#[derive(Serialize)]
struct Tlp2Marking {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: &'static str,
    created: &'static str,
    name: &'static str,
    extensions: Tlp2Extension,
}

struct Tlp2Extension(&'static str);

impl Serialize for Tlp2Extension {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry {
            extension_type: &'static str,
            tlp_2_0: &'static str,
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(TLP2_EXTENSION_ID, &Entry { extension_type: "property-extension", tlp_2_0: self.0 })?;
        map.end()
    }
}

/// The TLP 2.0 marking-definition object for `tlp`: (id, `created`, JSON).
pub fn marking_definition(tlp: Tlp) -> (&'static str, &'static str, String) {
    let (_, id, name, level) = *TLP2.iter().find(|(t, ..)| *t == tlp).expect("every TLP has a 2.0 marking");
    let object = Tlp2Marking {
        kind: "marking-definition",
        spec_version: "2.1",
        id,
        created: TLP2_CREATED,
        name,
        extensions: Tlp2Extension(level),
    };
    (id, TLP2_CREATED, serde_json::to_string(&object).expect("markings serialise"))
}

#[derive(Serialize)]
struct ExtensionDefinition {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: &'static str,
    created_by_ref: ObjectId,
    created: Timestamp,
    modified: Timestamp,
    name: &'static str,
    description: &'static str,
    schema: &'static str,
    version: &'static str,
    extension_types: [&'static str; 1],
    extension_properties: &'static [&'static str],
}

/// cirfed's extension-definition object as JSON.
pub fn extension_definition() -> String {
    let object = ExtensionDefinition {
        kind: "extension-definition",
        spec_version: "2.1",
        id: EXTENSION_ID,
        created_by_ref: CIRFED_IDENTITY,
        created: FIXED_CREATED,
        modified: FIXED_CREATED,
        name: "cirfed record properties",
        description: "The CIR level, categories, post-mortem fields and sighting kinds of records shared through \
                      a cirfed federation, as top-level properties of indicators, reports and sightings.",
        schema: EXTENSION_SCHEMA,
        version: "1.0.0",
        extension_types: ["toplevel-property-extension"],
        extension_properties: &EXTENSION_PROPERTIES,
    };
    serde_json::to_string(&object).expect("the extension definition serialises")
}

/// A member's pseudonymous identity: the id its records' `created_by_ref` names.
pub fn member_identity(member_id: &str) -> ObjectId {
    ObjectId::new("identity", named_uuid("cirfed/identity", member_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ids_are_the_named_uuids_they_say_they_are() {
        assert_eq!(
            EXTENSION_ID,
            format!("extension-definition--{}", named_uuid("cirfed/extension-definition", "cirfed-v1"))
        );
        assert_eq!(CIRFED_IDENTITY, ObjectId::new("identity", named_uuid("cirfed/fixed-identity", "cirfed")));
        assert_eq!(AUTHORITY_IDENTITY, ObjectId::new("identity", named_uuid("cirfed/fixed-identity", AUTHORITY_NAME)));
        assert_eq!(FIXED_CREATED.to_string(), "2025-01-01T00:00:00.000Z");
        for id in [EXTENSION_ID.to_owned(), CIRFED_IDENTITY.to_string(), AUTHORITY_IDENTITY.to_string()] {
            let (_, uuid) = super::super::ids::parse_object_id(&id).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
        }
    }

    #[test]
    fn both_tlp_versions_are_read_and_white_is_clear() {
        assert_eq!(tlp_of_marking("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"), Some(Tlp::Clear));
        assert_eq!(tlp_of_marking("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"), Some(Tlp::Amber));
        assert_eq!(tlp_of_marking("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"), Some(Tlp::AmberStrict));
        assert_eq!(tlp_of_marking("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"), Some(Tlp::Red));
        assert_eq!(tlp_of_marking("marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"), None);
        for tlp in EXPORTABLE_TLPS {
            assert_eq!(tlp_of_marking(marking_id(tlp)), Some(tlp));
        }
    }

    #[test]
    fn tlp2_marking_definitions_match_the_oasis_objects() {
        let (id, created, json) = marking_definition(Tlp::Clear);
        assert_eq!((id, created), ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", TLP2_CREATED));
        assert_eq!(
            json,
            r#"{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487","created":"2022-10-01T00:00:00.000Z","name":"TLP:CLEAR","extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"clear"}}}"#
        );
    }

    #[test]
    fn every_custom_property_name_is_valid_and_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for name in EXTENSION_PROPERTIES {
            assert!(seen.insert(name), "{name} twice");
            let valid = name.len() >= 3
                && name.len() <= 250
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            assert!(valid, "{name}");
            assert!(EXTENSION_SCHEMA.contains(name), "{name} is described in the schema text");
        }
    }
}
