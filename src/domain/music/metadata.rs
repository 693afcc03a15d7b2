//! What an uploaded audio file says about itself: its duration, title and artist, read by
//! symphonia's demuxers from the container headers and tags (ID3v1/v2, Vorbis comments in Ogg
//! and FLAC, MP4 `ilst`) without decoding a single packet. The reads are bounded and
//! blocking (run it off the async runtime); a file it cannot read yields nothing, never an error.
use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
};

use symphonia::core::{
    codecs::{CodecParameters, audio::well_known::CODEC_ID_OPUS},
    common::Limit,
    formats::{FormatOptions, FormatReader, Track, TrackType, probe::Hint},
    io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions},
    meta::{MetadataOptions, MetadataRevision, StandardTag},
    units::{Duration, TimeBase, Timestamp},
};

use super::TITLE_MAX;

/// Most bytes read from one file: the container headers, leading and trailing tags, the last
/// Ogg pages, a sample of MP3 or ADTS frames. Large skips (audio data, MP4 `mdat`) seek and cost
/// nothing, but symphonia reads every ID3v2 frame whole, cover art included, so this leaves room
/// for big embedded pictures. A file that needs more yields nothing.
const READ_BUDGET: u64 = 16 * 1024 * 1024;
/// Longest tag value kept in memory while reading (longer ones are skipped by the demuxer).
const TAG_BYTES: usize = 4 * 1024;

/// What the bytes say; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AudioMeta {
    pub duration_ms: Option<i64>,
    pub title: Option<String>,
    pub artist: Option<String>,
    /// The container holds audio and nothing else (an MP4 of a video is not a track).
    pub audio_only: bool,
}

/// Reads `file` from its start. Blocking; never fails (unreadable files give the default).
pub fn read(file: File) -> AudioMeta {
    match try_read(file) {
        Ok(meta) => meta,
        Err(err) => {
            tracing::debug!(error = %err, "no audio metadata");
            AudioMeta::default()
        }
    }
}

fn try_read(file: File) -> symphonia::core::errors::Result<AudioMeta> {
    let source = Budget::new(file)?;
    let stream = MediaSourceStream::new(Box::new(source), MediaSourceStreamOptions::default());
    let meta_opts = MetadataOptions::default()
        .limit_tag_bytes(Limit::Maximum(TAG_BYTES))
        // Cover art is never looked at.
        .limit_visual_bytes(Limit::Maximum(0));
    let mut reader = symphonia::default::get_probe().probe(
        &Hint::new(),
        stream,
        FormatOptions::default(),
        meta_opts,
    )?;
    let duration_ms = duration_ms(reader.as_ref());
    let audio_only = !reader.tracks().is_empty()
        && reader
            .tracks()
            .iter()
            .all(|t| matches!(t.codec_params, Some(CodecParameters::Audio(_))));
    let (title, artist) = tags(reader.as_mut());
    Ok(AudioMeta {
        duration_ms,
        title,
        artist,
        audio_only,
    })
}

/// The playable length in milliseconds. The length the container gives the media as a whole
/// comes first (an MP4's movie header honours the edit list that hides the AAC encoder's priming
/// samples; other containers derive it from their tracks), then the first audio track's own. For
/// MP3 without a Xing/VBRI header and for bare ADTS, symphonia estimates the frame count from the
/// bitrate of the first frames and the file length.
fn duration_ms(reader: &dyn FormatReader) -> Option<i64> {
    let track = reader
        .default_track(TrackType::Audio)
        .or_else(|| reader.first_track(TrackType::Audio))?;
    let audio = track.codec_params.as_ref().and_then(CodecParameters::audio);
    let to_nanos = |base: Option<TimeBase>, length: Option<u64>| {
        let time = base?.calc_duration(Duration::from(length?))?;
        Some(time.as_nanos())
    };
    let media = reader.media_info();
    let nanos = match ogg_opus_pre_skip(reader, track) {
        // Ogg Opus: the last granule position counts the pre-skip the decoder drops (RFC 7845
        // section 4), and symphonia leaves it in.
        Some(pre_skip) => to_nanos(
            track.time_base,
            track.num_frames.map(|n| n.saturating_sub(pre_skip)),
        ),
        None => to_nanos(media.time_base, media.duration.map(|d| d.get()))
            .or_else(|| to_nanos(track.time_base, track.duration.map(|d| d.get())))
            .or_else(|| {
                let rate = audio?.sample_rate?;
                to_nanos(TimeBase::try_from_recip(rate), track.num_frames)
            }),
    }?;
    let ms = (nanos + 500_000) / 1_000_000;
    (ms > 0).then(|| i64::try_from(ms).ok()).flatten()
}

/// The pre-skip of an Opus track in Ogg, when the reader has not taken it off the start.
fn ogg_opus_pre_skip(reader: &dyn FormatReader, track: &Track) -> Option<u64> {
    let audio = track.codec_params.as_ref()?.audio()?;
    let ogg = reader.format_info().short_name == "ogg";
    (ogg && audio.codec == CODEC_ID_OPUS && track.start_ts == Timestamp::ZERO)
        .then(|| track.delay.map(u64::from))
        .flatten()
}

/// Title and artist from every tag revision the reader holds. Revisions are in reading order
/// (trailing ID3v1 first, then leading tags, then the container's own), so a later revision's
/// value replaces an earlier one; several artists in one revision are joined.
fn tags(reader: &mut dyn FormatReader) -> (Option<String>, Option<String>) {
    let mut title = None;
    let mut artist = None;
    let mut visit = |revision: &MetadataRevision| {
        let mut found_title = None;
        let mut artists: Vec<String> = Vec::new();
        let mut album_artist = None;
        let all = revision.media.tags.iter().chain(
            revision
                .per_track
                .iter()
                .flat_map(|t| t.metadata.tags.iter()),
        );
        for tag in all {
            match &tag.std {
                Some(StandardTag::TrackTitle(value)) if found_title.is_none() => {
                    found_title = clean(value);
                }
                Some(StandardTag::Artist(value)) => {
                    if let Some(value) = clean(value)
                        && !artists.contains(&value)
                    {
                        artists.push(value);
                    }
                }
                Some(StandardTag::AlbumArtist(value)) if album_artist.is_none() => {
                    album_artist = clean(value);
                }
                _ => {}
            }
        }
        if found_title.is_some() {
            title = found_title;
        }
        let joined = clean(&artists.join(", ")).or(album_artist);
        if joined.is_some() {
            artist = joined;
        }
    };
    let mut log = reader.metadata();
    while let Some(revision) = log.pop() {
        visit(&revision);
    }
    if let Some(revision) = log.current() {
        visit(revision);
    }
    (title, artist)
}

/// A tag value fit to show: NUL-separated values (ID3v2.4) joined, other control characters
/// dropped, trimmed, at most `TITLE_MAX` characters; `None` when nothing is left.
fn clean(value: &str) -> Option<String> {
    let joined = value
        .split('\0')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let kept: String = joined.chars().filter(|c| !c.is_control()).collect();
    let kept: String = kept.trim().chars().take(TITLE_MAX).collect();
    let kept = kept.trim_end();
    (!kept.is_empty()).then(|| kept.to_string())
}

/// A file that stops reading after `READ_BUDGET` bytes (seeking is free: skipped audio costs
/// nothing), so a crafted file cannot make the probe walk all of a large upload.
struct Budget {
    file: File,
    len: u64,
    left: u64,
}

impl Budget {
    fn new(mut file: File) -> io::Result<Self> {
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Self {
            file,
            len,
            left: READ_BUDGET,
        })
    }
}

impl Read for Budget {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            return Err(io::Error::other("audio metadata read budget spent"));
        }
        let most = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.file.read(&mut buf[..most])?;
        self.left -= read as u64;
        Ok(read)
    }
}

impl Seek for Budget {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl MediaSource for Budget {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn fixture(name: &str) -> AudioMeta {
        let path = format!("{}/tests/fixtures/audio/{name}", env!("CARGO_MANIFEST_DIR"));
        read(File::open(path).unwrap())
    }

    fn of_bytes(bytes: &[u8]) -> AudioMeta {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        read(file)
    }

    /// `(file, true length in ms, tolerance in ms, title, artist)`.
    type Fixture = (
        &'static str,
        i64,
        i64,
        Option<&'static str>,
        Option<&'static str>,
    );

    const FIXTURES: [Fixture; 9] = [
        (
            "tone-vbrhdr.mp3",
            2000,
            30,
            Some("گفتگو"),
            Some("Ensemble Goftgu"),
        ),
        (
            "tone-cbr.mp3",
            2500,
            100,
            Some("Plain Frames"),
            Some("No Xing"),
        ),
        (
            "tone.ogg",
            1500,
            10,
            Some("Vorbis Tone"),
            Some("Ogg Artist"),
        ),
        ("tone.opus", 1250, 1, Some("Opus Tone"), Some("Opus Artist")),
        (
            "tone.flac",
            1000,
            5,
            Some("FLAC Tone"),
            Some("Lossless Artist"),
        ),
        ("tone.m4a", 1800, 30, Some("M4A Tone"), Some("MP4 Artist")),
        ("tone-isom.mp4", 1200, 30, Some("Generic Brand"), None),
        ("tone.aac", 1600, 120, None, None),
        // symphonia 0.6.1 parses a WAV's LIST/INFO tags and then drops them (upstream issue
        // #552), so a WAV has a length but no tags.
        ("tone.wav", 750, 5, None, None),
    ];

    #[test]
    fn fixtures_give_their_length_and_tags() {
        for (name, ms, tolerance, title, artist) in FIXTURES {
            let meta = fixture(name);
            let got = meta
                .duration_ms
                .unwrap_or_else(|| panic!("{name}: {meta:?}"));
            assert!((got - ms).abs() <= tolerance, "{name}: {got} ms, not {ms}");
            assert_eq!(meta.title.as_deref(), title, "{name}");
            assert_eq!(meta.artist.as_deref(), artist, "{name}");
            assert!(meta.audio_only, "{name}");
        }
        let clip = fixture("clip.mp4");
        assert!(!clip.audio_only, "a video track: {clip:?}");
    }

    #[test]
    fn big_cover_art_leaves_the_rest_readable() {
        let picture = 6 * 1024 * 1024;
        let mut frame = b"APIC".to_vec();
        let body = [b"\0image/png\0\x03\0".as_slice(), &vec![0u8; picture]].concat();
        frame.extend((body.len() as u32).to_be_bytes());
        frame.extend([0, 0]);
        frame.extend(body);
        // An ID3v2.3 tag holding only the picture, before the fixture's own tag.
        let size = frame.len() as u32;
        let syncsafe = [size >> 21, size >> 14, size >> 7, size].map(|b| (b & 0x7f) as u8);
        let mut bytes = [b"ID3\x03\0\0".as_slice(), &syncsafe, &frame].concat();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/audio/tone-vbrhdr.mp3"
        );
        bytes.extend(std::fs::read(path).unwrap());
        let meta = of_bytes(&bytes);
        assert_eq!(meta.duration_ms, Some(2000), "{meta:?}");
        assert_eq!(meta.artist.as_deref(), Some("Ensemble Goftgu"));
    }

    #[test]
    fn unreadable_bytes_give_nothing() {
        assert_eq!(of_bytes(b""), AudioMeta::default());
        assert_eq!(of_bytes(b"plain text, not audio"), AudioMeta::default());
        let mut junk = b"ID3\x04\0\0\0\0\0\x0a".to_vec();
        junk.extend((0..4000u32).map(|i| (i * 7 % 13) as u8));
        assert_eq!(of_bytes(&junk).duration_ms, None);
        // A truncated fixture still does not panic.
        let path = format!(
            "{}/tests/fixtures/audio/tone.m4a",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        let _ = of_bytes(&bytes[..bytes.len() / 3]);
    }

    #[test]
    fn tag_values_are_cleaned_and_bounded() {
        assert_eq!(clean("  Song\u{7}  "), Some("Song".into()));
        assert_eq!(clean("A\0B\0"), Some("A, B".into()));
        assert_eq!(clean("\0 \u{1b}"), None);
        let long = "ж".repeat(TITLE_MAX + 10);
        assert_eq!(clean(&long).unwrap().chars().count(), TITLE_MAX);
    }

    #[test]
    fn the_budget_stops_reading() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![1u8; 1024]).unwrap();
        let mut budget = Budget::new(file).unwrap();
        budget.left = 100;
        let mut buf = [0u8; 64];
        assert_eq!(budget.read(&mut buf).unwrap(), 64);
        assert_eq!(budget.read(&mut buf).unwrap(), 36);
        assert!(budget.read(&mut buf).is_err());
        assert_eq!(budget.byte_len(), Some(1024));
    }
}
