//! Contract check: a real answer must match what `/openapi.json` publishes for its route and status.
//! A small JSON Schema subset validator (type, required, properties, additionalProperties, enum,
//! oneOf, items, $ref, minimum, maximum, minLength, maxLength, format date / date-time / uuid);
//! `pattern` is not checked here.

use serde_json::Value;

/// Check `body` (answered with `status` and `content_type`) against the document's description of
/// `method path_template`.
pub fn conforms(
    doc: &Value,
    method: &str,
    path_template: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) {
    let operation = &doc["paths"][path_template][method];
    assert!(
        operation.is_object(),
        "{method} {path_template} is not in the document"
    );
    let responses = &operation["responses"];
    let response = responses
        .get(status.to_string())
        .unwrap_or(&responses["default"]);
    assert!(
        response.is_object(),
        "{method} {path_template}: status {status} is not documented"
    );
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let schema = &response["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path_template} {status}: {media} is not documented"
    );
    if let Err(error) = validate(doc, schema, body, "$") {
        panic!("{method} {path_template} {status} breaks its schema: {error}\n{body:#}");
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(target) => resolve(
            doc,
            &doc["components"]["schemas"][target.trim_start_matches("#/components/schemas/")],
        ),
        None => schema,
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "uuid" => uuid::Uuid::parse_str(text).is_ok(),
        _ => true,
    }
}

fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema["oneOf"].as_array() {
        let matching = options
            .iter()
            .filter(|s| validate(doc, s, value, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {matching} oneOf branches match"))
        };
    }
    if let Some(kind) = schema["type"].as_str() {
        if !type_matches(kind, value) {
            return Err(format!("{at}: expected {kind}, got {value}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(n) = value.as_f64() {
        let below = schema["minimum"].as_f64().is_some_and(|min| n < min);
        let above = schema["maximum"].as_f64().is_some_and(|max| n > max);
        if below || above {
            return Err(format!("{at}: {n} out of range"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        let short = schema["minLength"].as_u64().is_some_and(|min| chars < min);
        let long = schema["maxLength"].as_u64().is_some_and(|max| chars > max);
        let format = schema["format"]
            .as_str()
            .is_some_and(|f| !format_ok(f, text));
        if short || long || format {
            return Err(format!("{at}: {text:?} breaks length or format"));
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            validate(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                return Err(format!("{at}: missing {name}"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => validate(doc, property, field, &format!("{at}.{name}"))?,
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    return Err(format!("{at}: unexpected {name}"));
                }
                None => {}
            }
        }
    }
    Ok(())
}
