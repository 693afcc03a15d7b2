//! Content negotiation for `/graphql` (GraphQL over HTTP): the response's media type from the
//! request's `Accept` header, and whether a `GET` comes from a browser that wants GraphiQL.
use axum::http::{HeaderMap, header};

/// The two media types a GraphQL response is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/json`: every well-formed GraphQL response is 200, errors in the body.
    Json,
    /// `application/graphql-response+json`: a request that never executed (it did not parse,
    /// validate or coerce its variables) is a 4xx without `data`.
    GraphqlResponse,
}

impl Media {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json; charset=utf-8",
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        }
    }
}

/// What a request's `Accept` asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accepted {
    pub media: Media,
    /// The client names `text/html` before (or above) any JSON type: a browser opening the page.
    pub html: bool,
}

/// Reads `Accept`. `application/graphql-response+json` (or its draft name
/// `application/graphql+json`) wins when named with at least JSON's quality; `application/json`,
/// `application/*`, `*/*`, a missing header, or nothing this server can send all get JSON, the
/// spec's default for clients that predate the new type.
pub fn negotiate(headers: &HeaderMap) -> Accepted {
    let mut json = 0.0f32;
    let mut graphql = 0.0f32;
    let mut html = 0.0f32;
    let mut any_header = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            if media.is_empty() {
                continue;
            }
            any_header = true;
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/graphql-response+json" | "application/graphql+json" => {
                    graphql = graphql.max(q)
                }
                "application/json" => json = json.max(q),
                "application/*" | "*/*" => json = json.max(q.min(0.999)),
                "text/html" => html = html.max(q),
                _ => {}
            }
        }
    }
    let media = if graphql > 0.0 && graphql >= json {
        Media::GraphqlResponse
    } else {
        Media::Json
    };
    Accepted {
        media,
        html: any_header && html > 0.0 && html >= json.max(graphql),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: Option<&str>) -> Accepted {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::ACCEPT, value.parse().unwrap());
        }
        negotiate(&headers)
    }

    #[test]
    fn json_unless_the_new_type_is_named() {
        assert_eq!(accept(None).media, Media::Json);
        assert_eq!(accept(Some("*/*")).media, Media::Json);
        assert_eq!(accept(Some("application/json")).media, Media::Json);
        assert_eq!(accept(Some("text/plain")).media, Media::Json);
        assert_eq!(
            accept(Some("application/graphql-response+json")).media,
            Media::GraphqlResponse
        );
        // urql's and Apollo's header.
        assert_eq!(
            accept(Some(
                "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
            ))
            .media,
            Media::GraphqlResponse
        );
        assert_eq!(
            accept(Some(
                "application/json, application/graphql-response+json;q=0.9"
            ))
            .media,
            Media::Json
        );
    }

    #[test]
    fn browsers_get_the_page_and_tools_do_not() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        assert!(accept(Some(chrome)).html);
        assert!(!accept(None).html);
        assert!(!accept(Some("*/*")).html);
        assert!(!accept(Some("application/json")).html);
        assert!(!accept(Some("application/json, text/html;q=0.5")).html);
    }
}
