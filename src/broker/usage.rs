//! Reading the model from a request and token usage from a response (a
//! JSON document or the events of an SSE stream), without keeping either.

use serde_json::{Map, Value};

/// The model a request names: in a Gemini-style path
/// (`/v1beta/models/<model>:generateContent`), else the `model` of a JSON
/// body.
pub fn model(path: &str, body: &[u8]) -> Option<String> {
    if let Some(rest) = path.split("/models/").nth(1)
        && let Some(m) = rest.split([':', '?', '/']).next()
        && !m.is_empty()
    {
        return Some(m.chars().take(200).collect());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => match m.get("model") {
            Some(Value::String(s)) => Some(s.chars().take(200).collect()),
            _ => None,
        },
        _ => None,
    }
}

fn merge_usage(acc: &mut Map<String, Value>, v: &Value) {
    let candidates = [
        v.get("usage"),
        v.get("usageMetadata"),
        v.get("message").and_then(|m| m.get("usage")),
        v.get("response").and_then(|m| m.get("usage")),
        // Code Assist (a Gemini CLI subscription) wraps Gemini's answer.
        v.get("response").and_then(|m| m.get("usageMetadata")),
    ];
    for u in candidates.into_iter().flatten() {
        if let Value::Object(m) = u {
            for (k, val) in m {
                if val.is_number() {
                    acc.insert(k.clone(), val.clone());
                }
            }
        }
    }
}

/// Token usage from a response body: a JSON document, or SSE `data:` lines
/// (later events override earlier figures key by key).
pub fn usage(content_type: &str, body: &[u8]) -> Option<Map<String, Value>> {
    let mut acc = Map::new();
    if content_type.contains("text/event-stream") {
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) {
                merge_usage(&mut acc, &v);
            }
        }
    } else if let Ok(v) = serde_json::from_slice::<Value>(body) {
        merge_usage(&mut acc, &v);
    }
    (!acc.is_empty()).then_some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts() {
        assert_eq!(
            model("/v1/chat/completions", br#"{"model":"gpt-x"}"#).as_deref(),
            Some("gpt-x")
        );
        assert_eq!(
            model("/v1beta/models/gemini-pro:generateContent", b"{}").as_deref(),
            Some("gemini-pro")
        );
        let u = usage(
            "application/json",
            br#"{"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
        )
        .unwrap();
        assert_eq!(u["completion_tokens"], 5);
        let sse = b"event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":7}}}\n\ndata: {\"usage\":{\"output_tokens\":9}}\n\ndata: [DONE]\n";
        let u = usage("text/event-stream; charset=utf-8", sse).unwrap();
        assert_eq!(
            (u["input_tokens"].as_i64(), u["output_tokens"].as_i64()),
            (Some(7), Some(9))
        );
        assert!(usage("application/json", b"not json").is_none());
    }
}
