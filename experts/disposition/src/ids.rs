//! Deterministic identifiers: the same input gives the same playbook, step,
//! agent, target and action ids, so re-running a plan is idempotent for the
//! bindings that deliver it.

use uuid::{Builder, Uuid};

use crate::action::{ActionKind, Target};

/// Namespace of synod's name-based ids (UUIDv5 of `urn:synod:expert:disposition`).
fn synod_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:synod:expert:disposition")
}

/// The namespace CACAO 2.0 (section 10.10) gives for playbook UUIDv5 ids
/// derived from the JCS form of `name` and `playbook_types`.
const CACAO_NAMESPACE: Uuid = Uuid::from_u128(0xaa7c_af3a_d55a_4e9a_b34e_0562_15fb_a56a);

/// A UUID in version-4 layout whose bits are a SHA-1 name hash instead of
/// random: CACAO requires UUIDv4 for step objects, and a hash keeps them
/// deterministic while as unique as random ones.
pub fn hashed_v4(name: &str) -> Uuid {
    let hash = Uuid::new_v5(&synod_namespace(), name.as_bytes());
    Builder::from_random_bytes(hash.into_bytes()).into_uuid()
}

/// `<object_type>--<hashed v4 of object_type|name>`.
pub fn object_id(object_type: &str, name: &str) -> String {
    format!(
        "{object_type}--{}",
        hashed_v4(&format!("{object_type}|{name}"))
    )
}

/// The id of an action (and of its CACAO action step): from the kind and
/// the target's identity only, so the same action keeps its id when more
/// evidence arrives.
pub fn action_id(kind: ActionKind, target: &Target) -> String {
    object_id("action", &format!("{}|{}", kind.as_str(), target.key()))
}

/// The playbook id as CACAO 2.0 recommends for UUIDv5 playbook ids: the
/// CACAO namespace over the JSON Canonicalization Scheme (RFC 8785) form of
/// `{"name", "playbook_types"}`.
pub fn playbook_id(name: &str, playbook_types: &[&str]) -> String {
    // keys in lexicographic order and no whitespace: the JCS form for
    // string-only objects
    let canonical = serde_json::to_string(&serde_json::json!({
        "name": name,
        "playbook_types": playbook_types,
    }))
    .expect("strings serialise");
    format!(
        "playbook--{}",
        Uuid::new_v5(&CACAO_NAMESPACE, canonical.as_bytes())
    )
}

/// The identity (`created_by`) of playbooks this expert writes.
pub fn creator_id() -> String {
    format!(
        "identity--{}",
        Uuid::new_v5(&synod_namespace(), b"identity|synod disposition expert")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::TargetKind;

    #[test]
    fn ids_are_stable_and_v4_shaped() {
        let target = Target::new(TargetKind::Host, "WS01.corp.local");
        let same = Target::new(TargetKind::Host, "ws01");
        let id = action_id(ActionKind::IsolateHost, &target);
        assert_eq!(id, action_id(ActionKind::IsolateHost, &same));
        assert_ne!(id, action_id(ActionKind::Patch, &target));
        let uuid = Uuid::parse_str(id.strip_prefix("action--").unwrap()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(
            playbook_id("p", &["mitigation"]),
            playbook_id("p", &["mitigation"])
        );
        assert_ne!(
            playbook_id("p", &["mitigation"]),
            playbook_id("p", &["remediation"])
        );
    }
}
