//! Opaque cursors: base64 of a tagged position, decoded with the argument's name in errors.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

fn encode(text: String) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode<'a>(field: &str, cursor: &str, tag: char, buf: &'a mut String) -> AppResult<&'a str> {
    let bad = || AppError::bad_input(field, format!("{field} is not a valid cursor"));
    *buf = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    buf.strip_prefix(tag).ok_or_else(bad)
}

/// A message's position in its chat.
pub fn message(seq: i64) -> String {
    encode(format!("m{seq}"))
}

/// Decodes a message cursor to its sequence number.
pub fn decode_message(field: &str, cursor: &str) -> AppResult<i64> {
    let mut buf = String::new();
    decode(field, cursor, 'm', &mut buf)?
        .parse()
        .map_err(|_| AppError::bad_input(field, format!("{field} is not a valid cursor")))
}

/// A chat's position in a list ordered by activity.
pub fn chat(at: DateTime<Utc>, id: Uuid) -> String {
    encode(format!("c{}.{id}", at.timestamp_micros()))
}

/// Decodes a chat-list cursor.
pub fn decode_chat(field: &str, cursor: &str) -> AppResult<(DateTime<Utc>, Uuid)> {
    let mut buf = String::new();
    let text = decode(field, cursor, 'c', &mut buf)?;
    let bad = || AppError::bad_input(field, format!("{field} is not a valid cursor"));
    let (micros, id) = text.split_once('.').ok_or_else(bad)?;
    let at = micros
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// An item's position by id (search results, newest first).
pub fn id(id: Uuid) -> String {
    encode(format!("i{id}"))
}

/// Decodes an id cursor.
pub fn decode_id(field: &str, cursor: &str) -> AppResult<Uuid> {
    let mut buf = String::new();
    Uuid::parse_str(decode(field, cursor, 'i', &mut buf)?)
        .map_err(|_| AppError::bad_input(field, format!("{field} is not a valid cursor")))
}

/// A position inside an in-memory list.
pub fn index(i: usize) -> String {
    encode(format!("n{i}"))
}

/// Decodes an index cursor.
pub fn decode_index(field: &str, cursor: &str) -> AppResult<usize> {
    let mut buf = String::new();
    decode(field, cursor, 'n', &mut buf)?
        .parse()
        .map_err(|_| AppError::bad_input(field, format!("{field} is not a valid cursor")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: AppError) -> Option<String> {
        err.field().map(str::to_owned)
    }

    #[test]
    fn every_cursor_round_trips() {
        assert_eq!(decode_message("after", &message(42)).unwrap(), 42);
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_chat("after", &chat(at, id)).unwrap(), (at, id));
        assert_eq!(decode_id("after", &self::id(id)).unwrap(), id);
        assert_eq!(decode_index("after", &index(7)).unwrap(), 7);
    }

    #[test]
    fn cursors_are_opaque_and_url_safe() {
        let cursor = chat(Utc::now(), Uuid::now_v7());
        assert!(
            cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(!message(1).contains('1'));
    }

    #[test]
    fn a_cursor_of_another_kind_or_garbage_names_the_argument() {
        let err = decode_message("before", &index(3)).unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
        assert_eq!(field_of(err).as_deref(), Some("before"));
        for garbage in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("c123"),
            &URL_SAFE_NO_PAD.encode("mxyz"),
        ] {
            assert!(decode_message("after", garbage).is_err(), "{garbage}");
            assert!(decode_chat("after", garbage).is_err(), "{garbage}");
        }
        assert!(decode_id("after", &URL_SAFE_NO_PAD.encode("inot-a-uuid")).is_err());
    }
}
