//! GraphQL multipart requests (the upload spec Apollo's and urql's upload links speak), read with
//! our own limits: the `operations` and `map` parts obey the JSON body limit, each file its own
//! size limit, at most `MAX_FILES` files, and the parts must come in the spec's order. Files spool
//! to unnamed temporary files (nothing is left on disk if the process dies mid-upload).
use std::collections::HashMap;

use async_graphql::{BatchRequest, UploadValue};
use axum::body::Body;
use bytes::Bytes;
use futures_util::TryStreamExt;
use multer::{Constraints, Multipart, SizeLimit};
use tokio::io::AsyncWriteExt;

use crate::error::AppError;

/// Most files in one GraphQL multipart request.
pub const MAX_FILES: usize = 5;

/// The limits of one multipart request.
pub struct Limits {
    /// Largest `operations` or `map` part (the JSON body limit).
    pub json: usize,
    /// Largest file part.
    pub file: usize,
}

/// Reads a GraphQL multipart body into a batch with its uploads attached.
pub async fn receive(
    content_type: &str,
    body: Body,
    limits: Limits,
    spool_dir: &std::path::Path,
) -> Result<BatchRequest, AppError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| AppError::bad_input("body", "multipart body without a boundary"))?;
    let json = limits.json as u64;
    let whole = json * 2 + (limits.file as u64) * MAX_FILES as u64;
    let constraints = Constraints::new().size_limit(
        SizeLimit::new()
            .whole_stream(whole)
            .per_field(limits.file as u64)
            .for_field("operations", json)
            .for_field("map", json),
    );
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut multipart = Multipart::with_constraints(stream, boundary, constraints);

    let mut batch: Option<BatchRequest> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "operations" if batch.is_none() => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                batch = Some(parse_json::<BatchRequest>(&bytes, "operations")?);
            }
            "map" if batch.is_some() && map.is_none() => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                map = Some(parse_json(&bytes, "map")?);
            }
            _ => {
                let (Some(batch), Some(map)) = (batch.as_mut(), map.as_mut()) else {
                    return Err(AppError::bad_input(
                        "body",
                        "multipart parts must come in order: operations, map, then files",
                    ));
                };
                let Some(paths) = map.remove(&name) else {
                    return Err(AppError::bad_input(
                        "map",
                        format!("part `{name}` is not named in the map"),
                    ));
                };
                files += 1;
                if files > MAX_FILES {
                    return Err(AppError::bad_input(
                        "body",
                        format!("at most {MAX_FILES} files per request"),
                    ));
                }
                let upload = UploadValue {
                    filename: field.file_name().unwrap_or(&name).to_string(),
                    content_type: field.content_type().map(ToString::to_string),
                    content: spool(&mut field, spool_dir).await?,
                };
                for path in paths {
                    attach(batch, &path, &upload)?;
                }
            }
        }
    }
    let batch = batch.ok_or_else(|| AppError::bad_input("operations", "missing `operations`"))?;
    match map {
        None => Err(AppError::bad_input("map", "missing `map`")),
        Some(rest) if !rest.is_empty() => Err(AppError::bad_input(
            "map",
            "the map names files that were not sent",
        )),
        Some(_) => Ok(batch),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &Bytes, part: &str) -> Result<T, AppError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::bad_input(part, format!("`{part}` is not valid JSON: {e}")))
}

/// Streams one file part into an unnamed temporary file.
async fn spool(
    field: &mut multer::Field<'static>,
    dir: &std::path::Path,
) -> Result<std::fs::File, AppError> {
    let file = tempfile::tempfile_in(dir).map_err(|e| AppError::internal(e))?;
    let mut file = tokio::fs::File::from_std(file);
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        file.write_all(&chunk)
            .await
            .map_err(|e| AppError::internal(e))?;
    }
    file.flush().await.map_err(|e| AppError::internal(e))?;
    let mut file = file.into_std().await;
    std::io::Seek::rewind(&mut file).map_err(|e| AppError::internal(e))?;
    Ok(file)
}

/// Puts an upload at `path` (`variables.file`, or `0.variables.file` in a batch).
fn attach(batch: &mut BatchRequest, path: &str, upload: &UploadValue) -> Result<(), AppError> {
    let copy = upload.try_clone().map_err(|e| AppError::internal(e))?;
    match batch {
        BatchRequest::Single(request) => request.set_upload(path, copy),
        BatchRequest::Batch(requests) => {
            let (index, rest) = path.split_once('.').unwrap_or((path, ""));
            let request = index
                .parse::<usize>()
                .ok()
                .and_then(|i| requests.get_mut(i))
                .ok_or_else(|| AppError::bad_input("map", format!("no operation for `{path}`")))?;
            request.set_upload(rest, copy);
        }
    }
    Ok(())
}

fn multipart_error(err: multer::Error) -> AppError {
    match err {
        multer::Error::FieldSizeExceeded { field_name, .. } => {
            let part = field_name.unwrap_or_default();
            AppError::PayloadTooLarge(if part == "operations" || part == "map" {
                format!("`{part}` is larger than the request body limit")
            } else {
                "an uploaded file is too large".to_string()
            })
        }
        multer::Error::StreamSizeExceeded { .. } => {
            AppError::PayloadTooLarge("request body is too large".into())
        }
        other => AppError::bad_input("body", format!("malformed multipart body: {other}")),
    }
}
