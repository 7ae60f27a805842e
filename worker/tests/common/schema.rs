//! Enough of JSON Schema to check results against the committed schemas: type, required,
//! properties, additionalProperties: false, items, maxItems, minimum, enum and local $ref.

use serde_json::Value;

/// Every violation of `schema` (whose `$defs` `root` holds) by `value`, with its JSON pointer.
pub fn violations(root: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = root.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("bad $ref {r}"));
        return violations(root, target, value, at);
    }
    let mut out = Vec::new();
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            other => panic!("schema type {other} not supported here"),
        };
        if !ok {
            out.push(format!("{at}: expected {t}, got {value}"));
            return out;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            out.push(format!("{at}: {value} not in {options:?}"));
        }
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if x < min {
            out.push(format!("{at}: {x} below {min}"));
        }
    }
    if let Value::Object(map) = value {
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let key = key.as_str().unwrap();
            if !map.contains_key(key) {
                out.push(format!("{at}: missing {key}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => out.extend(violations(root, s, v, &format!("{at}/{k}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!("{at}: unexpected {k}"))
                }
                None => {}
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                out.push(format!("{at}: {} items, at most {max}", items.len()));
            }
        }
        if let Some(s) = schema.get("items") {
            for (i, v) in items.iter().enumerate() {
                out.extend(violations(root, s, v, &format!("{at}/{i}")));
            }
        }
    }
    out
}

pub fn check(schema_path: &std::path::Path, value: &Value) {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let v = violations(&schema, &schema, value, "");
    assert!(v.is_empty(), "{} violations of {}:\n{}\n{value:#}", v.len(), schema_path.display(), v.join("\n"));
}
