//! Downloads of files on object storage, answered the way tower-http's `ServeFile` answers for
//! files on disk (the same `Range` parser, 206 with `Content-Range`, 416 with `bytes */size`,
//! `Accept-Ranges`, `Last-Modified` and its conditions), so clients cannot tell the backends
//! apart. The bytes stream from the bucket; only the requested range is fetched.
use std::ops::RangeInclusive;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::Response,
};
use chrono::{DateTime, SubsecRound, Utc};

use crate::{
    entity::file,
    error::{AppError, AppResult},
    storage::Objects,
};

/// The response to `request` (its head) for `file`, whose bytes are the object under its
/// storage key.
pub async fn serve(
    objects: &Objects,
    file: &file::Model,
    mime: &mime::Mime,
    request: &Parts,
) -> AppResult<Response> {
    let size = u64::try_from(file.size).unwrap_or(0);
    // The row's time, the same on every instance (a file's bytes never change).
    let modified = file.created_at.trunc_subsecs(0);
    let headers = &request.headers;
    if let Some(status) = precondition(headers, modified) {
        return Ok(status_only(status));
    }
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, mime.as_ref())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::LAST_MODIFIED, http_date(modified));
    let head = request.method == Method::HEAD;
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            http_range_header::parse_range_header(value).and_then(|ranges| ranges.validate(size))
        });
    let response = match range {
        None => {
            let body = body(objects, file, None, head).await?;
            builder.header(header::CONTENT_LENGTH, size).body(body)
        }
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let range = ranges[0].clone();
            let length = range.end() - range.start() + 1;
            let content_range = format!("bytes {}-{}/{size}", range.start(), range.end());
            let body = body(objects, file, Some(range), head).await?;
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, content_range)
                .header(header::CONTENT_LENGTH, length)
                .body(body)
        }
        Some(Ok(_)) => builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{size}"))
            .body(Body::from("Cannot serve multipart range requests")),
        Some(Err(_)) => builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{size}"))
            .body(Body::empty()),
    };
    response.map_err(AppError::internal)
}

/// The object's bytes (or `range` of them) as a streaming body; none for `HEAD`.
async fn body(
    objects: &Objects,
    file: &file::Model,
    range: Option<RangeInclusive<u64>>,
    head: bool,
) -> AppResult<Body> {
    if head {
        return Ok(Body::empty());
    }
    let range = range.map(|r| *r.start()..*r.end() + 1);
    match objects.read(&file.storage_key, range).await {
        Ok(stream) => Ok(Body::from_stream(stream)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %file.id, "a stored file's object is missing");
            Err(AppError::NotFound("file not found".into()))
        }
        Err(err) => Err(AppError::internal(err)),
    }
}

/// 412 or 304 when the request's conditions say so (`If-Unmodified-Since` first, as
/// `ServeFile` checks them).
fn precondition(headers: &HeaderMap, modified: DateTime<Utc>) -> Option<StatusCode> {
    let date = |name| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .and_then(|value| DateTime::parse_from_rfc2822(value).ok())
    };
    if date(header::IF_UNMODIFIED_SINCE).is_some_and(|since| modified > since) {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if date(header::IF_MODIFIED_SINCE).is_some_and(|since| modified <= since) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    None
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// An HTTP date (IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_and_compared_as_http_dates() {
        let time = DateTime::parse_from_rfc3339("1994-11-06T08:49:37Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(http_date(time), "Sun, 06 Nov 1994 08:49:37 GMT");
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MODIFIED_SINCE, http_date(time).parse().unwrap());
        assert_eq!(precondition(&headers, time), Some(StatusCode::NOT_MODIFIED));
        let later = time + chrono::Duration::seconds(1);
        assert_eq!(precondition(&headers, later), None);
        headers.insert(
            header::IF_UNMODIFIED_SINCE,
            http_date(time).parse().unwrap(),
        );
        assert_eq!(
            precondition(&headers, later),
            Some(StatusCode::PRECONDITION_FAILED)
        );
    }
}
