//! What a file is, from its bytes and never from its name: the type and category of an upload
//! (text only when it is text throughout, never an executable or a script), which endpoints
//! accept it, and the message kind it makes.
use crate::entity::message::MessageKind;

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

impl Detected {
    /// The audio type of an MP4 sniffed as video (its brand, `isom` or `mp42`, says nothing
    /// about its tracks), for a caller that has read the tracks and found audio only.
    pub fn as_audio_only_mp4(&self) -> Option<Detected> {
        (self.mime == "video/mp4").then(|| Detected {
            mime: "audio/mp4".into(),
            category: Category::Audio,
        })
    }
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
            // Opus in Ogg (RFC 7845: `audio/ogg`, which every player takes; `audio/opus` names
            // the bare RTP payload).
            "audio/opus" => found("audio/ogg", Category::Audio),
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
pub(super) struct TextScan {
    /// The start of a character cut at the end of the previous chunk (at most 3 bytes).
    pending: Vec<u8>,
    binary: bool,
}

impl TextScan {
    pub(super) fn feed(&mut self, chunk: &[u8]) {
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
    pub(super) fn is_text(&self) -> bool {
        !self.binary && self.pending.is_empty()
    }
}

pub(super) fn accepted(accept: Accept, detected: &Detected) -> bool {
    match accept {
        Accept::Any => true,
        Accept::Images => detected.category == Category::Image,
        Accept::Media => matches!(detected.category, Category::Image | Category::Video),
        Accept::Audio => detected.category == Category::Audio,
    }
}

/// The message kind a file makes: images → IMAGE, audio → AUDIO, anything else → FILE.
pub fn kind_of(content_type: &str) -> MessageKind {
    if content_type.starts_with("image/") {
        MessageKind::Image
    } else if content_type.starts_with("audio/") {
        MessageKind::Audio
    } else {
        MessageKind::File
    }
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

    #[test]
    fn media_types_are_detected_from_their_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(
            detect(png),
            Some(Detected {
                mime: "image/png".into(),
                category: Category::Image,
            })
        );
        assert_eq!(category(b"%PDF-1.7\n"), Some(Category::Document));
        assert_eq!(category(b"ID3\x04\0\0\0\0\0\0"), Some(Category::Audio));
        // An executable `infer` knows is refused, whatever it is called.
        assert_eq!(category(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"), None);
    }

    #[test]
    fn every_track_format_is_audio() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audio");
        for (name, mime) in [
            ("tone-vbrhdr.mp3", "audio/mpeg"),
            ("tone-cbr.mp3", "audio/mpeg"),
            ("tone.ogg", "audio/ogg"),
            ("tone.opus", "audio/ogg"),
            ("tone.flac", "audio/x-flac"),
            ("tone.m4a", "audio/m4a"),
            ("tone.aac", "audio/aac"),
            ("tone.wav", "audio/x-wav"),
        ] {
            let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
            let head = &bytes[..bytes.len().min(8192)];
            let found = detect(head).unwrap_or_else(|| panic!("{name}: not detected"));
            assert_eq!(found.mime, mime, "{name}");
            assert!(accepted(Accept::Audio, &found), "{name}");
        }
        // An MP4 with a generic brand is video until its tracks say otherwise.
        let mut isom = b"\0\0\0\x18ftypisom\0\0\x02\0isommp42".to_vec();
        isom.extend(b"\0\0\0\x08free");
        let video = detect(&isom).unwrap();
        assert!(!accepted(Accept::Audio, &video));
        let audio = video.as_audio_only_mp4().unwrap();
        assert_eq!(audio.mime, "audio/mp4");
        assert!(accepted(Accept::Audio, &audio));
        assert_eq!(detect(b"%PDF-1.7\n").unwrap().as_audio_only_mp4(), None);
    }

    #[test]
    fn each_endpoint_accepts_its_categories() {
        let of = |category| Detected {
            mime: String::new(),
            category,
        };
        let all = [
            Category::Image,
            Category::Video,
            Category::Audio,
            Category::Document,
            Category::Text,
        ];
        let accepting = |accept| -> Vec<Category> {
            all.into_iter()
                .filter(|c| accepted(accept, &of(*c)))
                .collect()
        };
        assert_eq!(accepting(Accept::Any), all);
        assert_eq!(accepting(Accept::Images), [Category::Image]);
        assert_eq!(accepting(Accept::Media), [Category::Image, Category::Video]);
        assert_eq!(accepting(Accept::Audio), [Category::Audio]);
    }

    #[test]
    fn a_file_makes_a_message_of_its_kind() {
        assert_eq!(kind_of("image/png"), MessageKind::Image);
        assert_eq!(kind_of("image/heic"), MessageKind::Image);
        assert_eq!(kind_of("audio/mpeg"), MessageKind::Audio);
        assert_eq!(kind_of("video/mp4"), MessageKind::File);
        assert_eq!(kind_of("application/pdf"), MessageKind::File);
        assert_eq!(kind_of("text/plain; charset=utf-8"), MessageKind::File);
    }
}
