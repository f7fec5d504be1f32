//! Conversion between JSON (`serde_json::Value`) and protobuf's
//! `google.protobuf.Struct` / `Value`.
//!
//! protobuf carries every number as an `f64`. The conversion is lossless for
//! every JSON value whose numbers fit in an `f64` exactly: integers with an
//! absolute value up to 2^53 come back as JSON integers, other finite numbers
//! as floats. Integers beyond 2^53 would silently change, so they are
//! rejected with [`JsonError::IntegerOutOfRange`]; send such values (hashes,
//! 64-bit ids) as strings. Non-finite numbers coming from protobuf are
//! rejected with [`JsonError::NonFiniteNumber`] because JSON has no such value.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as ProtoValue};
use serde_json::{Map, Number, Value as JsonValue};

/// Largest integer magnitude an `f64` represents exactly (2^53).
pub const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Why a value could not be converted without loss.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// A `Struct` must be built from a JSON object.
    #[error("expected a JSON object at the top level, found {found}")]
    NotAnObject {
        /// The JSON type found instead (`array`, `string`, ...).
        found: &'static str,
    },
    /// The integer does not fit in an `f64` exactly.
    #[error(
        "integer {value} at `{path}` is larger than 2^53 and would lose precision in protobuf; send it as a string"
    )]
    IntegerOutOfRange {
        /// The offending integer, as written.
        value: String,
        /// JSON Pointer to it.
        path: String,
    },
    /// protobuf carried NaN or an infinity, which JSON cannot represent.
    #[error("number at `{path}` is {value}, which JSON cannot represent")]
    NonFiniteNumber {
        /// `NaN`, `inf` or `-inf`.
        value: String,
        /// JSON Pointer to it.
        path: String,
    },
}

/// The JSON type name of a value, for error messages.
pub fn json_type_name(value: &JsonValue) -> &'static str {
    match value {
        JsonValue::Null => "null",
        JsonValue::Bool(_) => "boolean",
        JsonValue::Number(_) => "number",
        JsonValue::String(_) => "string",
        JsonValue::Array(_) => "array",
        JsonValue::Object(_) => "object",
    }
}

/// Converts a JSON object into a protobuf `Struct`.
pub fn json_to_struct(value: &JsonValue) -> Result<Struct, JsonError> {
    match value {
        JsonValue::Object(map) => object_to_struct(map, &mut String::new()),
        other => Err(JsonError::NotAnObject {
            found: json_type_name(other),
        }),
    }
}

/// Converts a JSON object map into a protobuf `Struct`.
pub fn map_to_struct(map: &Map<String, JsonValue>) -> Result<Struct, JsonError> {
    object_to_struct(map, &mut String::new())
}

/// Converts any JSON value into a protobuf `Value`.
pub fn json_to_proto_value(value: &JsonValue) -> Result<ProtoValue, JsonError> {
    to_proto(value, &mut String::new())
}

/// Converts a protobuf `Struct` into a JSON object.
pub fn struct_to_json(value: &Struct) -> Result<JsonValue, JsonError> {
    struct_to_map(value, &mut String::new()).map(JsonValue::Object)
}

/// Converts an optional `Struct` into JSON; `None` becomes an empty object.
pub fn opt_struct_to_json(value: Option<&Struct>) -> Result<JsonValue, JsonError> {
    match value {
        Some(s) => struct_to_json(s),
        None => Ok(JsonValue::Object(Map::new())),
    }
}

/// Converts a protobuf `Value` into JSON.
pub fn proto_value_to_json(value: &ProtoValue) -> Result<JsonValue, JsonError> {
    from_proto(value, &mut String::new())
}

fn object_to_struct(map: &Map<String, JsonValue>, path: &mut String) -> Result<Struct, JsonError> {
    let mut fields = std::collections::BTreeMap::new();
    for (key, value) in map {
        let len = path.len();
        push_pointer_segment(path, key);
        fields.insert(key.clone(), to_proto(value, path)?);
        path.truncate(len);
    }
    Ok(Struct { fields })
}

fn to_proto(value: &JsonValue, path: &mut String) -> Result<ProtoValue, JsonError> {
    let kind = match value {
        JsonValue::Null => Kind::NullValue(0),
        JsonValue::Bool(b) => Kind::BoolValue(*b),
        JsonValue::Number(n) => Kind::NumberValue(number_to_f64(n, path)?),
        JsonValue::String(s) => Kind::StringValue(s.clone()),
        JsonValue::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&index.to_string());
                values.push(to_proto(item, path)?);
                path.truncate(len);
            }
            Kind::ListValue(ListValue { values })
        }
        JsonValue::Object(map) => Kind::StructValue(object_to_struct(map, path)?),
    };
    Ok(ProtoValue { kind: Some(kind) })
}

fn number_to_f64(number: &Number, path: &str) -> Result<f64, JsonError> {
    let out_of_range = || JsonError::IntegerOutOfRange {
        value: number.to_string(),
        path: display_path(path),
    };
    if let Some(unsigned) = number.as_u64() {
        if unsigned > MAX_EXACT_INTEGER {
            return Err(out_of_range());
        }
        return Ok(unsigned as f64);
    }
    if let Some(signed) = number.as_i64() {
        if signed.unsigned_abs() > MAX_EXACT_INTEGER {
            return Err(out_of_range());
        }
        return Ok(signed as f64);
    }
    // serde_json only produces finite floats.
    Ok(number.as_f64().unwrap_or(0.0))
}

fn struct_to_map(value: &Struct, path: &mut String) -> Result<Map<String, JsonValue>, JsonError> {
    let mut map = Map::with_capacity(value.fields.len());
    for (key, field) in &value.fields {
        let len = path.len();
        push_pointer_segment(path, key);
        map.insert(key.clone(), from_proto(field, path)?);
        path.truncate(len);
    }
    Ok(map)
}

fn from_proto(value: &ProtoValue, path: &mut String) -> Result<JsonValue, JsonError> {
    let Some(kind) = &value.kind else {
        return Ok(JsonValue::Null);
    };
    Ok(match kind {
        Kind::NullValue(_) => JsonValue::Null,
        Kind::BoolValue(b) => JsonValue::Bool(*b),
        Kind::NumberValue(n) => f64_to_json(*n, path)?,
        Kind::StringValue(s) => JsonValue::String(s.clone()),
        Kind::ListValue(list) => {
            let mut items = Vec::with_capacity(list.values.len());
            for (index, item) in list.values.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&index.to_string());
                items.push(from_proto(item, path)?);
                path.truncate(len);
            }
            JsonValue::Array(items)
        }
        Kind::StructValue(s) => JsonValue::Object(struct_to_map(s, path)?),
    })
}

fn f64_to_json(number: f64, path: &str) -> Result<JsonValue, JsonError> {
    if !number.is_finite() {
        return Err(JsonError::NonFiniteNumber {
            value: number.to_string(),
            path: display_path(path),
        });
    }
    let is_exact_integer = number.fract() == 0.0 && number.abs() <= MAX_EXACT_INTEGER as f64;
    if is_exact_integer {
        // Exact by the check above; negative zero becomes 0.
        return Ok(if number < 0.0 {
            JsonValue::from(number as i64)
        } else {
            JsonValue::from(number as u64)
        });
    }
    Ok(Number::from_f64(number).map_or(JsonValue::Null, JsonValue::Number))
}

fn push_pointer_segment(path: &mut String, key: &str) {
    path.push('/');
    for ch in key.chars() {
        match ch {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            other => path.push(other),
        }
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_nested_values() {
        let value = json!({
            "events": [{"EventID": 1, "Image": "C:\\a.exe", "score": 0.25}],
            "negative": -42,
            "flag": true,
            "nothing": null,
            "nested": {"a/b": {"~": [1, 2.5, "x"]}},
            "big": 9007199254740992u64,
        });
        let proto = json_to_struct(&value).unwrap();
        assert_eq!(struct_to_json(&proto).unwrap(), value);
    }

    #[test]
    fn rejects_integers_beyond_f64_precision_with_path() {
        let value = json!({"ids": [1, 9007199254740993u64]});
        let error = json_to_struct(&value).unwrap_err();
        assert_eq!(
            error,
            JsonError::IntegerOutOfRange {
                value: "9007199254740993".into(),
                path: "/ids/1".into()
            }
        );
    }

    #[test]
    fn rejects_non_objects_at_top_level() {
        let error = json_to_struct(&json!([1])).unwrap_err();
        assert_eq!(error, JsonError::NotAnObject { found: "array" });
    }

    #[test]
    fn rejects_non_finite_numbers_from_protobuf() {
        let value = ProtoValue {
            kind: Some(Kind::NumberValue(f64::NAN)),
        };
        assert!(matches!(
            proto_value_to_json(&value),
            Err(JsonError::NonFiniteNumber { .. })
        ));
    }
}
