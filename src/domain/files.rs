//! Uploads and downloads: receive a stream into a temporary file while counting bytes (stopping
//! at the limit), detect the type from the bytes, write the row, then move the file into place.
//! Downloads are allowed to whoever may see what the file belongs to, or to anyone holding an
//! unexpired signed link (so `<img src>` works without headers).
use bytes::Bytes;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use sha2::Sha256;
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
};
use crate::{
    entity::{
        chat::ChatKind,
        file::{self, Purpose},
        message, user,
    },
    error::{AppError, AppResult},
    limits::Action,
    state::AppState,
    storage::{Storage, TempFile},
};

/// What kind of content a file holds, from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Image,
    Video,
    Audio,
    Document,
    Text,
}

/// Which files an endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Images, video, audio, documents and plain text (never executables).
    Any,
    /// Images only.
    Images,
    /// jpg, png, webp, gif, heic, avif, mp4, mov.
    Media,
    /// Audio only.
    Audio,
}

/// A detected type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    pub mime: String,
    pub category: Category,
}

/// Detects the type from the first bytes; `None` for executables and unknown binary data.
pub fn detect(head: &[u8]) -> Option<Detected> {
    let found = |mime: &str, category| {
        Some(Detected {
            mime: mime.to_string(),
            category,
        })
    };
    if let Some(kind) = infer::get(head) {
        let mime = kind.mime_type();
        return match mime {
            "image/jpeg" | "image/png" | "image/webp" | "image/gif" | "image/avif" => {
                found(mime, Category::Image)
            }
            "image/heif" | "image/heic" => found("image/heic", Category::Image),
            "video/mp4" | "video/quicktime" => found(mime, Category::Video),
            "audio/mpeg" | "audio/ogg" | "audio/x-wav" | "audio/x-flac" | "audio/aac"
            | "audio/m4a" | "audio/x-m4a" => found(mime, Category::Audio),
            "application/pdf" | "application/zip" => found(mime, Category::Document),
            _ => None,
        };
    }
    // Text must be text: a script, an executable whose header `infer` did not take (a short
    // ELF), or any NUL byte is not.
    if EXECUTABLE_MAGIC.iter().any(|magic| head.starts_with(magic)) || head.contains(&0) {
        return None;
    }
    match std::str::from_utf8(head) {
        Ok(_) => found("text/plain; charset=utf-8", Category::Text),
        // A multi-byte character cut at the end of the sniffed window is still text.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            found("text/plain; charset=utf-8", Category::Text)
        }
        Err(_) => None,
    }
}

/// Starts of executables and scripts: `#!`, ELF, PE (`MZ`), Mach-O (32/64-bit, both byte
/// orders). `#!`, ELF and `MZ` would otherwise pass as text; the rest fail UTF-8 anyway.
const EXECUTABLE_MAGIC: [&[u8]; 7] = [
    b"#!",
    b"\x7fELF",
    b"MZ",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
];

/// Follows an upload chunk by chunk to tell whether the whole file, not only the sniffed head,
/// is UTF-8 text without NUL bytes.
#[derive(Default)]
struct TextScan {
    /// The start of a character cut at the end of the previous chunk (at most 3 bytes).
    pending: Vec<u8>,
    binary: bool,
}

impl TextScan {
    fn feed(&mut self, chunk: &[u8]) {
        if self.binary {
            return;
        }
        if chunk.contains(&0) {
            self.binary = true;
            return;
        }
        let joined;
        let bytes = if self.pending.is_empty() {
            chunk
        } else {
            joined = [self.pending.as_slice(), chunk].concat();
            &joined
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => self.pending.clear(),
            Err(e) if e.error_len().is_none() => self.pending = bytes[e.valid_up_to()..].to_vec(),
            Err(_) => self.binary = true,
        }
    }

    /// Whether everything fed was text (a character cut at the very end is not).
    fn is_text(&self) -> bool {
        !self.binary && self.pending.is_empty()
    }
}

fn accepted(accept: Accept, detected: &Detected) -> bool {
    match accept {
        Accept::Any => true,
        Accept::Images => detected.category == Category::Image,
        Accept::Media => matches!(detected.category, Category::Image | Category::Video),
        Accept::Audio => detected.category == Category::Audio,
    }
}

/// Bytes sniffed for the type.
const HEAD: usize = 8192;

/// An upload that has been received into a temporary file.
pub struct Received {
    temp: TempFile,
    size: u64,
    head: Vec<u8>,
    file_name: String,
    /// The whole file is UTF-8 text without NUL bytes.
    text: bool,
}

impl Received {
    /// The first bytes of the file (for format-specific metadata).
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

/// Streams `viewer`'s upload into a temporary file; more than `limit` bytes → 413, a broken
/// stream → 400. Every upload starts here, so the per-user upload limit is spent here, before
/// any byte is read. Nothing is left behind on failure.
pub async fn receive<S, E>(
    app: &AppState,
    viewer: &Viewer,
    mut stream: S,
    limit: usize,
    file_name: Option<&str>,
) -> AppResult<Received>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    app.limits.per_user(Action::Upload, viewer, 1).await?;
    let mut temp = app.storage.temp().await.map_err(AppError::internal)?;
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(1024);
    let mut text = TextScan::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| AppError::bad_input("file", format!("the upload was cut off: {e}")))?;
        size += chunk.len() as u64;
        if size > limit as u64 {
            return Err(AppError::PayloadTooLarge(format!(
                "file exceeds {limit} bytes"
            )));
        }
        if head.len() < HEAD {
            let take = (HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        text.feed(&chunk);
        temp.write(&chunk).await.map_err(AppError::internal)?;
    }
    temp.finish().await.map_err(AppError::internal)?;
    Ok(Received {
        temp,
        size,
        head,
        file_name: sanitize_name(file_name.unwrap_or("file")),
        text: text.is_text(),
    })
}

/// Keeps only the last path component, drops control characters and leading dots, and bounds
/// the length; the result is metadata only, never a path.
pub fn sanitize_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    let cleaned: String = cleaned.chars().take(200).collect();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// Where a stored file belongs.
pub struct Owner {
    pub purpose: Purpose,
    pub chat_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
}

/// Checks the type against `accept` (415 otherwise), writes the row and moves the bytes into
/// place. Returns the row and the detected type.
#[tracing::instrument(
    skip_all,
    fields(
        user = %viewer.user_id,
        purpose = ?owner.purpose,
        chat = ?owner.chat_id,
        message = ?owner.message_id,
    )
)]
pub async fn save(
    app: &AppState,
    viewer: &Viewer,
    received: Received,
    accept: Accept,
    owner: Owner,
) -> AppResult<(file::Model, Detected)> {
    if received.size == 0 {
        return Err(AppError::bad_input("file", "the file is empty"));
    }
    let detected = detect(&received.head)
        // The head looked like text; so must the rest.
        .filter(|d| d.category != Category::Text || received.text)
        .filter(|d| accepted(accept, d))
        .ok_or_else(|| {
            AppError::UnsupportedMediaType("this type of file is not accepted here".into())
        })?;
    let key = Storage::new_key();
    let row = file::ActiveModel {
        id: Set(Uuid::now_v7()),
        uploader_id: Set(Some(viewer.user_id)),
        purpose: Set(owner.purpose),
        storage_key: Set(key.clone()),
        file_name: Set(received.file_name),
        content_type: Set(detected.mime.clone()),
        size: Set(received.size as i64),
        chat_id: Set(owner.chat_id),
        message_id: Set(owner.message_id),
        created_at: Set(Utc::now()),
    }
    .insert(&app.db)
    .await?;
    if let Err(err) = app.storage.persist(received.temp, &key).await {
        file::Entity::delete_by_id(row.id).exec(&app.db).await.ok();
        return Err(AppError::internal(err));
    }
    Ok((row, detected))
}

/// Deletes a file's row and bytes.
pub async fn remove(app: &AppState, file: &file::Model) -> AppResult<()> {
    file::Entity::delete_by_id(file.id).exec(&app.db).await?;
    app.storage.delete(&file.storage_key).await;
    Ok(())
}

/// The URL a client uses to fetch a file: public for avatars, otherwise signed and expiring.
pub fn url(app: &AppState, file: &file::Model) -> String {
    if file.purpose == Purpose::Avatar {
        return format!("/files/{}", file.id);
    }
    signed_path(app, file.id)
}

/// A signed, expiring `/files/{id}` link.
pub fn signed_path(app: &AppState, id: Uuid) -> String {
    let expires = Utc::now().timestamp() + app.config.link_ttl_seconds as i64;
    // Round up to the hour so one response's links are stable and cacheable.
    let expires = expires + (3600 - expires.rem_euclid(3600));
    format!(
        "/files/{id}?exp={expires}&sig={}",
        signature(app, id, expires)
    )
}

/// Stores a new profile image for the caller (images only) and points `avatarUrl` at it; the
/// previous one is deleted.
pub async fn set_avatar(
    app: &AppState,
    viewer: &Viewer,
    received: Received,
) -> AppResult<user::Model> {
    let owner = Owner {
        purpose: Purpose::Avatar,
        chat_id: None,
        message_id: None,
    };
    let (file, _) = save(app, viewer, received, Accept::Images, owner).await?;
    let me = super::accounts::me(app, viewer).await?;
    let previous = me.avatar_url.as_deref().and_then(file_id_of);
    let mut model: user::ActiveModel = me.into();
    model.avatar_url = Set(Some(url(app, &file)));
    model.updated_at = Set(Utc::now());
    let updated = model.update(&app.db).await?;
    if let Some(old) = previous.and_then(|id| (id != file.id).then_some(id))
        && let Some(old) = file::Entity::find_by_id(old).one(&app.db).await?
    {
        remove(app, &old).await?;
    }
    Ok(updated)
}

/// The file id inside a stored `/files/{id}` URL.
pub fn file_id_of(url: &str) -> Option<Uuid> {
    let rest = url.strip_prefix("/files/")?;
    Uuid::parse_str(rest.split(['?', '/']).next()?).ok()
}

/// Stores a new image for a group or room (admins) and points its `imageUrl` at it.
pub async fn set_chat_image(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    received: Received,
) -> AppResult<crate::entity::chat::Model> {
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    if access.chat.kind == ChatKind::Direct {
        return Err(AppError::bad_input("chat_id", "direct chats have no image"));
    }
    let owner = Owner {
        purpose: Purpose::ChatImage,
        chat_id: Some(chat_id),
        message_id: None,
    };
    let (file, _) = save(app, viewer, received, Accept::Images, owner).await?;
    let previous = access.chat.image_url.as_deref().and_then(file_id_of);
    let mut model: crate::entity::chat::ActiveModel = access.chat.into();
    model.image_url = Set(Some(format!("/files/{}", file.id)));
    super::autocommit(app, |db, outbox| {
        Box::pin(async move {
            let chat = model.update(db).await?;
            if let Some(old) = previous
                && let Some(old) = file::Entity::find_by_id(old).one(db).await?
            {
                remove(app, &old).await?;
            }
            let event = crate::events::Event::ChatUpdated { chat_id };
            outbox.record(crate::events::Topic::Chat(chat_id), event);
            Ok(chat)
        })
    })
    .await
}

/// Adds a file to one's own message (images and video only).
pub async fn attach_to_message(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    message_id: Uuid,
    received: Received,
) -> AppResult<file::Model> {
    let (message, _) = super::access::message_access(app, viewer, message_id, Need::Member).await?;
    if message.chat_id != chat_id {
        return Err(AppError::NotFound("message not found".into()));
    }
    if message.sender_id != Some(viewer.user_id) {
        return Err(AppError::Forbidden(
            "only the sender may add attachments".into(),
        ));
    }
    if message.deleted_at.is_some() {
        return Err(AppError::bad_input("message_id", "the message was deleted"));
    }
    let owner = Owner {
        purpose: Purpose::Attachment,
        chat_id: Some(chat_id),
        message_id: Some(message_id),
    };
    super::autocommit(app, |_, outbox| {
        Box::pin(async move {
            let (file, _) = save(app, viewer, received, Accept::Media, owner).await?;
            let event = crate::events::Event::MessageEdited { message };
            outbox.record(crate::events::Topic::Chat(chat_id), event);
            Ok(file)
        })
    })
    .await
}

fn signature(app: &AppState, id: Uuid, expires: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&app.link_secret).expect("HMAC takes any key length");
    mac.update(format!("{id}.{expires}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A signed link's parameters.
pub struct Signed {
    pub exp: i64,
    pub sig: String,
}

/// The file behind a download, if the caller may have it: avatars for anyone, a valid signed
/// link for anyone, otherwise whoever may see what the file belongs to.
pub async fn authorize_download(
    app: &AppState,
    viewer: Option<&Viewer>,
    id: Uuid,
    signed: Option<Signed>,
) -> AppResult<file::Model> {
    let hidden = || AppError::NotFound("file not found".into());
    let file = file::Entity::find_by_id(id)
        .one(&app.db)
        .await?
        .ok_or_else(hidden)?;
    if let Some(message_id) = file.message_id {
        let message = message::Entity::find_by_id(message_id).one(&app.db).await?;
        if message.is_none_or(|m| m.deleted_at.is_some()) {
            return Err(hidden());
        }
    }
    if file.purpose == Purpose::Avatar {
        return Ok(file);
    }
    if let Some(signed) = signed {
        let well_formed =
            signed.sig.len() == 64 && signed.sig.bytes().all(|b| b.is_ascii_hexdigit());
        let valid = well_formed
            && signed.exp >= Utc::now().timestamp()
            && constant_time_eq(
                signature(app, file.id, signed.exp).as_bytes(),
                signed.sig.as_bytes(),
            );
        if !valid {
            return Err(AppError::Forbidden(
                "this link is invalid or has expired".into(),
            ));
        }
        return Ok(file);
    }
    let viewer = viewer.ok_or_else(hidden)?;
    if file.uploader_id == Some(viewer.user_id) {
        return Ok(file);
    }
    let Some(chat_id) = file.chat_id else {
        return Err(hidden());
    };
    let access = chat_access(app, viewer, chat_id, Need::Read)
        .await
        .map_err(|_| hidden())?;
    let member_or_public = access.membership.is_some()
        || viewer.is_staff
        || (access.chat.kind == ChatKind::Room && !access.chat.is_private);
    if !member_or_public {
        return Err(hidden());
    }
    Ok(file)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(bytes: &[u8]) -> Option<Category> {
        detect(bytes).map(|d| d.category)
    }

    fn scan(chunks: &[&[u8]]) -> bool {
        let mut text = TextScan::default();
        chunks.iter().for_each(|c| text.feed(c));
        text.is_text()
    }

    #[test]
    fn text_is_text() {
        assert_eq!(category(b"hello\nworld\n"), Some(Category::Text));
        assert_eq!(category("سلام".as_bytes()), Some(Category::Text));
        // A character cut by the end of the sniffed window.
        assert_eq!(category(&"سلام".as_bytes()[..7]), Some(Category::Text));
    }

    #[test]
    fn nul_bytes_and_executable_magic_are_not_text() {
        let mut elf16 = b"\x7fELF\x02\x01\x01".to_vec();
        elf16.resize(16, 0);
        let cases: [&[u8]; 9] = [
            &elf16,
            b"\x7fELF looks like text otherwise",
            b"MZ\x90 then text",
            b"MZ is also a PE header",
            b"#!/bin/sh\nrm -rf /\n",
            b"plain text\0with a NUL",
            b"\xfe\xed\xfa\xcfmach-o",
            b"\xcf\xfa\xed\xfemach-o",
            b"\0",
        ];
        for bytes in cases {
            assert_eq!(
                category(bytes),
                None,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn the_whole_file_must_be_text() {
        let word = "سلام".as_bytes();
        assert!(scan(&[b"hello ", b"world"]));
        assert!(
            scan(&[&word[..3], &word[3..5], &word[5..]]),
            "characters split across chunks"
        );
        assert!(!scan(&[b"hello", b" wor\0ld"]), "a NUL after the head");
        assert!(
            !scan(&[b"hello", b"\xff\xfe"]),
            "invalid UTF-8 after the head"
        );
        assert!(!scan(&[b"hello", &word[..3]]), "cut off inside a character");
        assert!(
            scan(&[]),
            "nothing is (empty) text; emptiness is refused elsewhere"
        );
    }
}
