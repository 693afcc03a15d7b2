//! The REST upload shim at the documented paths. Each endpoint checks what it can without the
//! bytes, streams its `file` part into storage (limits enforced while the bytes arrive), then
//! calls the same domain code as GraphQL.
use std::{collections::HashMap, convert::Infallible};

use axum::{
    Json,
    extract::{FromRequest, Multipart, Path, Query, Request, State, multipart::MultipartRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{HttpState, auth::CurrentUser};
use crate::{
    auth::Viewer,
    domain::{
        access::{Need, chat_access, message_access},
        files::{self, Accept, Owner, Received},
        messages::{self, Outgoing},
        music,
    },
    entity::{file, message, track},
    error::{AppError, AppResult},
    state::AppState,
};

/// Longest text part accepted next to the file (captions, titles, ids).
const TEXT_PART_MAX: usize = 16 * 1024;
/// All text parts of one request together: a few small fields, never a buffer for arbitrary data.
const TEXT_PARTS_TOTAL_MAX: usize = 32 * 1024;
/// Most text parts beside the file.
const TEXT_PARTS_MAX: usize = 8;

/// An upload's multipart body, read only when the handler asks: what can be checked without the
/// bytes (the chat, the caller's rights there) is checked first, so a refused upload stores
/// nothing. The caller comes first, from `CurrentUser`.
pub struct Upload {
    app: AppState,
    multipart: Result<Multipart, MultipartRejection>,
}

impl FromRequest<HttpState> for Upload {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &HttpState) -> Result<Self, Infallible> {
        let multipart = Result::<Multipart, _>::from_request(request, state).await;
        Ok(Self {
            app: state.app.clone(),
            multipart: multipart.unwrap_or_else(|never| match never {}),
        })
    }
}

/// Which size limit a file is held to.
#[derive(Clone, Copy)]
enum Limit {
    /// Attachments and images (`max_upload_bytes`).
    File,
    /// Music tracks (`max_music_bytes`).
    Music,
}

/// The `file` part, received into storage, and the small text parts beside it.
struct Form {
    file: Received,
    text: HashMap<String, String>,
}

impl Upload {
    /// The state, for the checks made before the form is read.
    fn app(&self) -> &AppState {
        &self.app
    }

    /// Reads the form; the state comes back for what the handler does with it.
    async fn read(self, viewer: &Viewer, limit: Limit) -> AppResult<(AppState, Form)> {
        let config = &self.app.config;
        let limit = match limit {
            Limit::File => config.max_upload_bytes,
            Limit::Music => config.max_music_bytes,
        };
        let form = read_form(&self.app, viewer, self.multipart, limit).await?;
        Ok((self.app, form))
    }

    /// For the chat endpoints: the chat named by the path, the caller's right there checked
    /// before any byte is read, then the form.
    async fn read_in_chat(
        self,
        viewer: &Viewer,
        chat_id: &str,
        need: Need,
    ) -> AppResult<(AppState, Uuid, Form)> {
        let chat_id = parse_uuid("chat", chat_id)?;
        chat_access(&self.app, viewer, chat_id, need).await?;
        let (app, form) = self.read(viewer, Limit::File).await?;
        Ok((app, chat_id, form))
    }
}

async fn read_form(
    app: &AppState,
    viewer: &Viewer,
    multipart: Result<Multipart, MultipartRejection>,
    limit: usize,
) -> AppResult<Form> {
    let mut multipart = multipart.map_err(|e| {
        AppError::bad_input("file", format!("expected a multipart/form-data body: {e}"))
    })?;
    let mut file = None;
    let mut text = HashMap::new();
    let mut text_bytes = 0usize;
    loop {
        let field = multipart.next_field().await.map_err(|e| {
            AppError::bad_input("file", format!("malformed or cut-off multipart body: {e}"))
        })?;
        let Some(mut field) = field else { break };
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" && file.is_none() {
            let file_name = field.file_name().map(str::to_string);
            let received =
                files::receive(app, viewer, &mut field, limit, file_name.as_deref()).await?;
            file = Some(received);
        } else {
            if text.len() >= TEXT_PARTS_MAX {
                return Err(AppError::bad_input(
                    &name,
                    format!("at most {TEXT_PARTS_MAX} text parts beside the file"),
                ));
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk =
                    chunk.map_err(|e| AppError::bad_input(&name, format!("cut-off part: {e}")))?;
                text_bytes += chunk.len();
                if value.len() + chunk.len() > TEXT_PART_MAX || text_bytes > TEXT_PARTS_TOTAL_MAX {
                    return Err(AppError::bad_input(&name, format!("{name} is too long")));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value)
                .map_err(|_| AppError::bad_input(&name, "not UTF-8 text"))?;
            if value.contains('\0') {
                return Err(AppError::bad_input(
                    &name,
                    "text must not contain NUL characters (U+0000)",
                ));
            }
            text.insert(name, value);
        }
    }
    let file =
        file.ok_or_else(|| AppError::bad_input("file", "a part named `file` is required"))?;
    Ok(Form { file, text })
}

fn parse_uuid(field: &str, value: &str) -> AppResult<Uuid> {
    Uuid::parse_str(value).map_err(|_| AppError::NotFound(format!("no such {field}")))
}

/// An attachment as REST clients see it.
pub fn attachment_json(app: &AppState, file: &file::Model) -> Value {
    json!({
        "id": file.id,
        "url": files::url(app, file),
        "contentType": file.content_type,
        "size": file.size,
        "fileName": file.file_name,
    })
}

fn message_json(app: &AppState, message: &message::Model, attachments: &[file::Model]) -> Value {
    json!({
        "id": message.id,
        "chat_id": message.chat_id,
        "sender_id": message.sender_id,
        "kind": message.kind,
        "content": message.content,
        "reply_to_id": message.reply_to_id,
        "attachments": attachments.iter().map(|f| attachment_json(app, f)).collect::<Vec<_>>(),
        "created_at": message.created_at,
        "edited_at": message.edited_at,
        "is_deleted": message.deleted_at.is_some(),
    })
}

fn track_json(app: &AppState, track: &track::Model, file: &file::Model) -> Value {
    json!({
        "id": track.id,
        "title": track.title,
        "url": files::url(app, file),
        "contentType": file.content_type,
        "size": file.size,
        "durationSeconds": track.duration_seconds,
        "durationMs": track.duration_ms,
        "artist": track.artist,
        "roomId": track.room_id,
        "uploaderId": track.uploader_id,
        "createdAt": track.created_at,
    })
}

/// 201 with the created thing as JSON.
fn created(body: Value) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Stores a file as an attachment that belongs to no message yet.
async fn save_attachment(
    app: &AppState,
    viewer: &Viewer,
    file: Received,
) -> AppResult<file::Model> {
    let owner = Owner {
        purpose: file::Purpose::Attachment,
        chat_id: None,
        message_id: None,
    };
    let (stored, _) = files::save(app, viewer, file, Accept::Any, owner).await?;
    Ok(stored)
}

/// `POST /api/upload` (and `/chat/upload_media/`): a file to attach later.
pub async fn upload(CurrentUser(viewer): CurrentUser, upload: Upload) -> AppResult<Response> {
    let (app, form) = upload.read(&viewer, Limit::File).await?;
    let stored = save_attachment(&app, &viewer, form.file).await?;
    created(attachment_json(&app, &stored))
}

/// `POST /api/users/me/profile-image`: images only.
pub async fn profile_image(
    CurrentUser(viewer): CurrentUser,
    upload: Upload,
) -> AppResult<Response> {
    let (app, form) = upload.read(&viewer, Limit::File).await?;
    let user = files::set_avatar(&app, &viewer, form.file).await?;
    let url = user
        .avatar_url
        .as_deref()
        .map(|path| files::absolute(&app, path));
    Ok(Json(json!({ "profile_image": url })).into_response())
}

/// `POST /api/chats/{chat_id}/messages/file`: a message whose kind comes from the file's bytes.
pub async fn file_message(
    CurrentUser(viewer): CurrentUser,
    Path(chat_id): Path<String>,
    upload: Upload,
) -> AppResult<Response> {
    let (app, chat_id, form) = upload.read_in_chat(&viewer, &chat_id, Need::Post).await?;
    let caption = form.text.get("content").cloned().unwrap_or_default();
    let stored = save_attachment(&app, &viewer, form.file).await?;
    let outgoing = Outgoing {
        chat_id: Some(chat_id),
        recipient_id: None,
        content: caption,
        reply_to_id: None,
        attachment_ids: vec![stored.id],
        thread_root_id: None,
    };
    match messages::send(&app, &viewer, outgoing).await {
        Ok(message) => {
            let attached = file::Model {
                message_id: Some(message.id),
                chat_id: Some(chat_id),
                ..stored
            };
            created(message_json(&app, &message, &[attached]))
        }
        Err(err) => {
            files::remove(&app, &stored).await.ok();
            Err(err)
        }
    }
}

/// `POST /api/chats/{chat_id}/group-image`: admins; images only.
pub async fn group_image(
    CurrentUser(viewer): CurrentUser,
    Path(chat_id): Path<String>,
    upload: Upload,
) -> AppResult<Response> {
    let (app, chat_id, form) = upload.read_in_chat(&viewer, &chat_id, Need::Admin).await?;
    let chat = files::set_chat_image(&app, &viewer, chat_id, form.file).await?;
    let url = chat
        .image_url
        .as_deref()
        .and_then(files::file_id_of)
        .map(|id| files::signed_url(&app, id));
    Ok(Json(json!({ "image_url": url })).into_response())
}

/// `POST /api/conversations/{conversation_id}/messages/{message_id}/attachments/`: the sender
/// adds an image or video to their message.
pub async fn message_attachment(
    CurrentUser(viewer): CurrentUser,
    Path((conversation_id, message_id)): Path<(String, String)>,
    upload: Upload,
) -> AppResult<Response> {
    let chat_id = parse_uuid("conversation", &conversation_id)?;
    let message_id = parse_uuid("message", &message_id)?;
    message_access(upload.app(), &viewer, message_id, Need::Member).await?;
    let (app, form) = upload.read(&viewer, Limit::File).await?;
    let stored = files::attach_to_message(&app, &viewer, chat_id, message_id, form.file).await?;
    created(attachment_json(&app, &stored))
}

/// `POST /music/upload`: an audio track, optionally in a room (`room_id`) with a `title`.
pub async fn music_upload(CurrentUser(viewer): CurrentUser, upload: Upload) -> AppResult<Response> {
    let (app, form) = upload.read(&viewer, Limit::Music).await?;
    let room = form
        .text
        .get("room_id")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(|r| {
            Uuid::parse_str(r)
                .map_err(|_| AppError::bad_input("room_id", "room_id is not a valid id"))
        })
        .transpose()?;
    let title = form.text.get("title").map(String::as_str);
    let (track, stored) = music::upload(&app, &viewer, form.file, room, title).await?;
    created(track_json(&app, &track, &stored))
}

/// Query of `GET /music/`.
#[derive(Deserialize)]
pub struct MusicQuery {
    room_id: Option<String>,
}

/// `GET /music/`: tracks I may see (of one room with `room_id`).
pub async fn music_list(
    State(state): State<HttpState>,
    CurrentUser(viewer): CurrentUser,
    Query(query): Query<MusicQuery>,
) -> AppResult<Response> {
    let app = &state.app;
    let room = query
        .room_id
        .as_deref()
        .map(|r| parse_uuid("room", r))
        .transpose()?;
    let (tracks, _) = music::list(app, &viewer, room, music::PAGE_MAX, None).await?;
    let tracks: Vec<Value> = tracks.iter().map(|(t, f)| track_json(app, t, f)).collect();
    Ok(Json(json!({ "tracks": tracks })).into_response())
}

/// `DELETE /music/{id}`: the uploader or an admin of the track's room.
pub async fn music_delete(
    State(state): State<HttpState>,
    CurrentUser(viewer): CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id = parse_uuid("track", &id)?;
    music::delete(&state.app, &viewer, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
