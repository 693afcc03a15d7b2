//! File downloads: `GET /files/{id}` (bearer token or signed link) and `GET /music/{id}`.
//! Bytes on disk are served by tower-http's `ServeFile`, which answers `Range` requests (206 /
//! 416) so players can seek; bytes in a bucket stream from there the same way
//! (`object_downloads`). The type is the one detected at upload, and browsers are told not to
//! sniff.
use axum::{
    body::Body,
    extract::{Path, Query, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use uuid::Uuid;

use super::{
    HttpState,
    auth::{CurrentUser, MaybeUser},
    object_downloads,
};
use crate::{
    domain::{
        files::{self, Signed},
        music,
    },
    entity::file,
    error::{AppError, AppResult},
    state::AppState,
    storage::Stored,
};

/// The query of a signed link.
#[derive(Deserialize)]
pub struct LinkQuery {
    exp: Option<i64>,
    sig: Option<String>,
}

fn parse(id: &str, what: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::NotFound(format!("{what} not found")))
}

/// `GET /files/{id}`.
pub async fn file(
    State(state): State<HttpState>,
    MaybeUser(viewer): MaybeUser,
    Path(id): Path<String>,
    Query(link): Query<LinkQuery>,
    request: Request,
) -> AppResult<Response> {
    let id = parse(&id, "file")?;
    let signed = match (link.exp, link.sig) {
        (Some(exp), Some(sig)) => Some(Signed { exp, sig }),
        (None, None) => None,
        _ => {
            return Err(AppError::Forbidden(
                "this link is invalid or has expired".into(),
            ));
        }
    };
    let file = files::authorize_download(&state.app, viewer.as_ref(), id, signed).await?;
    serve(&state.app, &file, request).await
}

/// `GET /music/{id}`.
pub async fn music(
    State(state): State<HttpState>,
    CurrentUser(viewer): CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> AppResult<Response> {
    let (_, file) = music::get(&state.app, &viewer, parse(&id, "track")?).await?;
    serve(&state.app, &file, request).await
}

async fn serve(app: &AppState, file: &file::Model, request: Request) -> AppResult<Response> {
    let mime: mime::Mime = file
        .content_type
        .parse()
        .unwrap_or(mime::APPLICATION_OCTET_STREAM);
    let mut response = match app.storage.locate(&file.storage_key) {
        Stored::File(path) => {
            let response = match ServeFile::new_with_mime(path, &mime).oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.status() == StatusCode::NOT_FOUND {
                return Err(AppError::NotFound("file not found".into()));
            }
            response.map(Body::new)
        }
        Stored::Object(objects) => {
            let (request, _) = request.into_parts();
            object_downloads::serve(objects, file, &mime, &request).await?
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    let ascii: String = file
        .file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._- ".contains(*c))
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{ascii}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response.into_response())
}
