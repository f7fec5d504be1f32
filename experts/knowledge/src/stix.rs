//! Reads ATT&CK and CAPEC STIX 2.x bundles into [`Object`]s and raw relationships.

use serde_json::Value;

use crate::model::{Kind, Object, clean_text, summary};

/// A relationship as read, by STIX ids.
#[derive(Debug, Clone)]
pub(crate) struct RawEdge {
    pub(crate) rel: String,
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) description: String,
}

/// What one bundle contributes.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) objects: Vec<Object>,
    pub(crate) edges: Vec<RawEdge>,
    /// Tactic STIX ids in matrix order (first `x-mitre-matrix` with `tactic_refs`).
    pub(crate) tactic_refs: Vec<String>,
    /// Objects skipped because their type is not modelled, by type.
    pub(crate) skipped: usize,
}

/// Parses a STIX bundle (`{"type": "bundle", "objects": [...]}`) or a bare
/// array of objects.
pub(crate) fn parse_bundle(bundle: &Value) -> Result<Parsed, String> {
    let objects = match bundle {
        Value::Object(map) => map
            .get("objects")
            .and_then(Value::as_array)
            .ok_or("expected a STIX bundle: a JSON object with an `objects` array")?,
        Value::Array(items) => items,
        _ => return Err("expected a STIX bundle (JSON object with `objects`)".to_owned()),
    };
    let mut parsed = Parsed::default();
    for value in objects {
        let kind_text = str_field(value, "type");
        if kind_text == "relationship" {
            parsed.edges.push(RawEdge {
                rel: str_field(value, "relationship_type").to_owned(),
                source: str_field(value, "source_ref").to_owned(),
                target: str_field(value, "target_ref").to_owned(),
                description: clean_text(str_field(value, "description")),
            });
            continue;
        }
        if kind_text == "x-mitre-matrix" && parsed.tactic_refs.is_empty() {
            parsed.tactic_refs = strings(value, "tactic_refs");
            continue;
        }
        match object_kind(value) {
            Some(kind) => parsed.objects.push(object(value, kind)),
            None => parsed.skipped += 1,
        }
    }
    Ok(parsed)
}

fn object_kind(value: &Value) -> Option<Kind> {
    let stix_type = str_field(value, "type");
    let capec =
        external_ids(value, "capec").next().is_some() || value.get("x_capec_version").is_some();
    Some(match stix_type {
        "attack-pattern" if capec => Kind::AttackPattern,
        "attack-pattern" => Kind::Technique,
        "course-of-action" if capec => Kind::CapecMitigation,
        "course-of-action" => Kind::Mitigation,
        "x-mitre-tactic" => Kind::Tactic,
        "intrusion-set" => Kind::Group,
        "malware" | "tool" => Kind::Software,
        "campaign" => Kind::Campaign,
        "x-mitre-detection-strategy" => Kind::DetectionStrategy,
        "x-mitre-analytic" => Kind::Analytic,
        "x-mitre-data-component" => Kind::DataComponent,
        _ => return None,
    })
}

fn object(value: &Value, kind: Kind) -> Object {
    let mut object = Object::new(
        str_field(value, "id").to_owned(),
        kind,
        str_field(value, "name").trim().to_owned(),
    );
    let own_source = if kind == Kind::AttackPattern {
        "capec"
    } else {
        "mitre-attack"
    };
    object.external_id = external_ids(value, own_source).next().map(str::to_owned);
    object.description = clean_text(str_field(value, "description"));
    if let Some(extended) = value
        .get("x_capec_extended_description")
        .and_then(Value::as_str)
    {
        object.description = format!("{} {}", object.description, clean_text(extended));
    }
    if kind == Kind::CapecMitigation {
        // CAPEC names its courses of action `coa-66-0`: show what they say.
        object.full_name = summary(&object.description, 120);
    }
    object.revoked = value["revoked"].as_bool().unwrap_or(false);
    let status = str_field(value, "x_capec_status");
    object.deprecated = value["x_mitre_deprecated"].as_bool().unwrap_or(false)
        || status == "Deprecated"
        || status == "Obsolete";
    object.is_subtechnique = value["x_mitre_is_subtechnique"].as_bool().unwrap_or(false);
    object.shortname = value["x_mitre_shortname"].as_str().map(str::to_owned);
    object.platforms = strings(value, "x_mitre_platforms");
    object.analytic_refs = strings(value, "x_mitre_analytic_refs");
    let mut aliases = strings(value, "aliases");
    aliases.extend(strings(value, "x_mitre_aliases"));
    aliases.extend(strings(value, "x_capec_alternate_terms"));
    aliases.retain(|a| !a.eq_ignore_ascii_case(&object.name));
    aliases.dedup();
    object.aliases = aliases;
    if let Some(phases) = value["kill_chain_phases"].as_array() {
        object.tactics = phases
            .iter()
            .filter(|p| str_field(p, "kill_chain_name") == "mitre-attack")
            .map(|p| str_field(p, "phase_name").to_owned())
            .collect();
    }
    if let Some(detection) = value["x_mitre_detection"].as_str() {
        object.detection.push(clean_text(detection));
    }
    if kind == Kind::AttackPattern {
        object.cites = cited_ids(value);
    }
    object
}

/// `CWE-…` and ATT&CK technique ids a CAPEC pattern references.
fn cited_ids(value: &Value) -> Vec<String> {
    let mut ids: Vec<String> = external_ids(value, "cwe").map(str::to_owned).collect();
    ids.extend(external_ids(value, "ATTACK").map(|id| {
        if id.starts_with('T') {
            id.to_owned()
        } else {
            format!("T{id}")
        }
    }));
    ids
}

/// External ids from `external_references` whose `source_name` is `source`.
fn external_ids<'a>(value: &'a Value, source: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    value["external_references"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(move |r| str_field(r, "source_name").eq_ignore_ascii_case(source))
        .filter_map(|r| r["external_id"].as_str())
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}
