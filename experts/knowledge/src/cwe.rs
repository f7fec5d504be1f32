//! Reads CWE entries in the official REST-API JSON format (one entry per
//! file as in `json_repo/{W,C}/<id>.json`, or a file holding an array of
//! entries or `{"Weaknesses": [...], "Categories": [...]}`).

use std::path::Path;

use serde_json::Value;

use crate::model::{Kind, Object, clean_text};

/// Reads every CWE weakness and category under `path` (a file or a
/// directory, searched recursively for `*.json`). Views are skipped.
pub(crate) fn load(path: &Path) -> Result<Vec<Object>, String> {
    let mut objects = Vec::new();
    if path.is_dir() {
        let mut files = Vec::new();
        collect_json_files(path, &mut files)?;
        files.sort();
        for file in files {
            let value = crate::read_json(&file)?;
            parse_value(&value, &mut objects);
        }
    } else {
        parse_value(&crate::read_json(path)?, &mut objects);
    }
    Ok(objects)
}

fn collect_json_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_json_files(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// Adds the entries found in one JSON document.
pub(crate) fn parse_value(value: &Value, objects: &mut Vec<Object>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| parse_value(v, objects)),
        Value::Object(map) if map.contains_key("ID") => objects.extend(entry(value)),
        Value::Object(map) => {
            for key in ["Weaknesses", "Categories"] {
                if let Some(items) = map.get(key) {
                    parse_value(items, objects);
                }
            }
        }
        _ => {}
    }
}

/// One weakness or category; `None` for views and unrecognised entries.
fn entry(value: &Value) -> Option<Object> {
    let id = match &value["ID"] {
        Value::String(s) => s.trim_start_matches("CWE-").to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let kind = if value.get("Abstraction").is_some() || value.get("Description").is_some() {
        Kind::Weakness
    } else if value.get("Summary").is_some() {
        Kind::Category
    } else {
        return None;
    };
    let name = value["Name"].as_str()?.trim().to_owned();
    let tag = if kind == Kind::Weakness {
        "weakness"
    } else {
        "category"
    };
    let mut object = Object::new(format!("cwe--{tag}--{id}"), kind, name);
    object.external_id = Some(format!("CWE-{id}"));
    let mut description = text(&value["Description"]);
    for key in ["ExtendedDescription", "Summary"] {
        let extra = text(&value[key]);
        if !extra.is_empty() {
            description = format!("{description} {extra}").trim().to_owned();
        }
    }
    object.description = description;
    let status = value["Status"].as_str().unwrap_or_default();
    object.deprecated = status == "Deprecated" || status == "Obsolete";
    object.aliases = list(value, "AlternateTerms")
        .filter_map(|t| t["Term"].as_str().map(str::to_owned))
        .collect();
    object.detection = list(value, "DetectionMethods")
        .map(|d| labelled(&d["Method"], &d["Description"]))
        .collect();
    object.mitigation = list(value, "PotentialMitigations")
        .map(|m| labelled(&m["Strategy"], &m["Description"]))
        .collect();
    object.cites = list(value, "RelatedAttackPatterns")
        .filter_map(|c| match c {
            Value::String(s) => Some(format!("CAPEC-{}", s.trim_start_matches("CAPEC-"))),
            Value::Number(n) => Some(format!("CAPEC-{n}")),
            _ => None,
        })
        .collect();
    Some(object)
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => clean_text(s),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

fn labelled(label: &Value, body: &Value) -> String {
    let body = text(body);
    match label.as_str() {
        Some(label) if !label.is_empty() => format!("{label}: {body}"),
        _ => body,
    }
}
