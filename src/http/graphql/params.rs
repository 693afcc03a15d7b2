//! The parameters of a GraphQL request as GraphQL over HTTP defines them: a JSON object (or a
//! batch, an array of them) in a `POST` body, or `?query=&operationName=&variables=&extensions=`
//! on a `GET`, where `variables` and `extensions` are JSON text. A parameter of the wrong shape is
//! a request error (400), never a document to execute.
use async_graphql::{Request, Variables};
use serde_json::{Map, Value};

/// One operation as the client sent it (its `query` may still be a persisted query's hash only).
#[derive(Debug, Default)]
pub struct Params {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    pub extensions: Map<String, Value>,
}

/// A body: one operation or a batch.
#[derive(Debug)]
pub enum Sent {
    Single(Params),
    Batch(Vec<Params>),
}

/// A body of `application/json`.
pub fn from_json(bytes: &[u8]) -> Result<Sent, String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| format!("the request body is not valid JSON: {err}"))?;
    match value {
        Value::Array(items) if items.is_empty() => Err("the batch is empty".into()),
        Value::Array(items) => items
            .into_iter()
            .map(from_object)
            .collect::<Result<_, _>>()
            .map(Sent::Batch),
        value => from_object(value).map(Sent::Single),
    }
}

fn from_object(value: Value) -> Result<Params, String> {
    let Value::Object(mut map) = value else {
        return Err("the request must be a JSON object with a `query`".into());
    };
    Ok(Params {
        query: string(map.remove("query"), "query")?,
        operation_name: string(map.remove("operationName"), "operationName")?,
        variables: object(map.remove("variables"), "variables")?,
        extensions: object(map.remove("extensions"), "extensions")?.unwrap_or_default(),
    })
}

/// The query string of a `GET /graphql`.
pub fn from_query_string(raw: Option<&str>) -> Result<Params, String> {
    let pairs: Vec<(String, String)> = match raw {
        Some(raw) => serde_urlencoded::from_str(raw)
            .map_err(|err| format!("the query string cannot be read: {err}"))?,
        None => Vec::new(),
    };
    let mut params = Params::default();
    for (key, value) in pairs {
        match key.as_str() {
            "query" => params.query = Some(value),
            "operationName" => params.operation_name = Some(value).filter(|v| !v.is_empty()),
            "variables" => params.variables = json_text(&value, "variables")?,
            "extensions" => {
                params.extensions = json_text(&value, "extensions")?.unwrap_or_default()
            }
            _ => {}
        }
    }
    Ok(params)
}

impl Params {
    /// The request to execute; a request error when there is no document.
    pub fn into_request(self) -> Result<Request, String> {
        let query = self
            .query
            .ok_or("the request has no `query` (a GraphQL document as a string)")?;
        let mut request = Request::new(query);
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = self.variables {
            request = request.variables(Variables::from_json(Value::Object(variables)));
        }
        for (key, value) in self.extensions {
            if let Ok(value) = async_graphql::Value::from_json(value) {
                request.extensions.insert(key, value);
            }
        }
        Ok(request)
    }
}

fn string(value: Option<Value>, name: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

fn object(value: Option<Value>, name: &str) -> Result<Option<Map<String, Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(format!("`{name}` must be a JSON object (a map)")),
    }
}

fn json_text(text: &str, name: &str) -> Result<Option<Map<String, Value>>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|_| format!("`{name}` must be a JSON object written as text"))?;
    object(Some(value), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked() {
        assert!(from_json(br#"{"query":"{ a }","variables":{"x":1}}"#).is_ok());
        assert!(from_json(br#"{"query":"{ a }","variables":null,"extensions":null}"#).is_ok());
        for bad in [
            r#"{"query":1}"#,
            r#"{"query":"{ a }","variables":[]}"#,
            r#"{"query":"{ a }","variables":"{}"}"#,
            r#"{"query":"{ a }","operationName":{}}"#,
            r#"{"query":"{ a }","extensions":"x"}"#,
            r#"[]"#,
            r#"7"#,
            r#"{"query":"#,
        ] {
            assert!(from_json(bad.as_bytes()).is_err(), "{bad}");
        }
        let Sent::Single(params) = from_json(br#"{"qeury":"{ a }"}"#).unwrap() else {
            panic!("single");
        };
        assert!(params.into_request().is_err());
    }

    #[test]
    fn get_parameters_are_json_text() {
        let p = from_query_string(Some(
            "query=%7B%20a%20%7D&variables=%7B%22x%22%3A1%7D&operationName=",
        ))
        .unwrap();
        assert_eq!(p.query.as_deref(), Some("{ a }"));
        assert_eq!(p.variables.unwrap()["x"], 1);
        assert!(p.operation_name.is_none());
        assert!(from_query_string(Some("query=x&variables=%5B%5D")).is_err());
        assert!(from_query_string(Some("query=x&extensions=nope")).is_err());
    }
}
