//! File contents built in code for the upload tests: real magic numbers (a valid 1x1 PNG and
//! GIF, JFIF, RIFF/WAVE, ID3 + MPEG frames, OggS/Vorbis, ELF, PE, PDF, text), padded to any size.

/// A real 1x1 RGBA PNG: signature, IHDR, IDAT, IEND (CRCs valid).
pub const PNG_1X1: [u8; 67] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// A real 1x1 GIF89a.
const GIF_1X1: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// JPEG SOI + JFIF APP0 segment.
const JPEG_HEAD: [u8; 20] = [
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00,
];

/// `header` followed by zeros up to `size` bytes.
pub fn padded(header: &[u8], size: usize) -> Vec<u8> {
    assert!(size >= header.len(), "{size} is shorter than the header");
    let mut bytes = header.to_vec();
    bytes.resize(size, 0);
    bytes
}

/// `header` followed by a repeating non-zero pattern up to `size`, so every byte range of the
/// file is recognisable (for Range checks).
pub fn patterned(header: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.extend((bytes.len()..size).map(|i| (i % 251) as u8 + 1));
    bytes
}

/// A PNG of exactly `size` bytes (the 1x1 image, then zeros).
pub fn png(size: usize) -> Vec<u8> {
    padded(&PNG_1X1, size)
}

/// A PNG of exactly `size` bytes with a patterned tail.
pub fn png_patterned(size: usize) -> Vec<u8> {
    patterned(&PNG_1X1, size)
}

pub fn jpeg(size: usize) -> Vec<u8> {
    let mut bytes = padded(&JPEG_HEAD, size - 2);
    bytes.extend([0xff, 0xd9]);
    bytes
}

pub fn gif() -> Vec<u8> {
    GIF_1X1.to_vec()
}

/// A WAV: RIFF/WAVE, PCM 8 kHz mono 8-bit, `seconds` of patterned samples.
pub fn wav(seconds: usize) -> Vec<u8> {
    wav_sized(44 + 8000 * seconds)
}

/// A WAV of exactly `total` bytes (44-byte header, then samples).
pub fn wav_sized(total: usize) -> Vec<u8> {
    let data_len = total - 44;
    let mut bytes = Vec::with_capacity(44 + data_len);
    bytes.extend(b"RIFF");
    bytes.extend(((36 + data_len) as u32).to_le_bytes());
    bytes.extend(b"WAVEfmt ");
    bytes.extend(16u32.to_le_bytes()); // fmt chunk size
    bytes.extend(1u16.to_le_bytes()); // PCM
    bytes.extend(1u16.to_le_bytes()); // mono
    bytes.extend(8000u32.to_le_bytes()); // sample rate
    bytes.extend(8000u32.to_le_bytes()); // byte rate
    bytes.extend(1u16.to_le_bytes()); // block align
    bytes.extend(8u16.to_le_bytes()); // bits per sample
    bytes.extend(b"data");
    bytes.extend((data_len as u32).to_le_bytes());
    bytes.extend((0..data_len).map(|i| (i % 251) as u8 + 1));
    bytes
}

/// An MP3: an empty ID3v2.4 tag, then `frames` MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz,
/// 417 bytes each, silent).
pub fn mp3(frames: usize) -> Vec<u8> {
    let mut bytes = vec![b'I', b'D', b'3', 4, 0, 0, 0, 0, 0, 0];
    for _ in 0..frames {
        bytes.extend([0xff, 0xfb, 0x90, 0x64]);
        bytes.extend([0u8; 413]);
    }
    bytes
}

/// An Ogg page (beginning of stream) holding a Vorbis identification header.
pub fn ogg() -> Vec<u8> {
    let mut bytes = b"OggS".to_vec();
    bytes.extend([0, 0x02]); // version, BOS
    bytes.extend([0u8; 8]); // granule position
    bytes.extend(0x1234_5678u32.to_le_bytes()); // serial
    bytes.extend([0u8; 4]); // page sequence
    bytes.extend([0u8; 4]); // checksum
    bytes.extend([1, 30]); // one segment of 30 bytes
    bytes.extend(b"\x01vorbis");
    bytes.extend([0u8; 4]); // vorbis version
    bytes.push(1); // channels
    bytes.extend(44_100u32.to_le_bytes());
    bytes.extend([0u8; 12]); // bitrates
    bytes.extend([0xb8, 0x01]); // block sizes, framing bit
    bytes
}

/// A 64-bit little-endian ELF executable header (x86-64), then zeros.
pub fn elf(size: usize) -> Vec<u8> {
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    header.extend(2u16.to_le_bytes()); // ET_EXEC
    header.extend(0x3eu16.to_le_bytes()); // x86-64
    header.extend(1u32.to_le_bytes()); // version
    header.extend(0x40_1000u64.to_le_bytes()); // entry point
    header.extend(64u64.to_le_bytes()); // program headers offset
    padded(&header, size)
}

/// A Windows PE: "MZ" DOS header pointing at a "PE\0\0" signature at 0x80, then zeros.
pub fn pe(size: usize) -> Vec<u8> {
    let dos = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff";
    let mut bytes = padded(dos, size.max(0x100));
    bytes[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    bytes[0x80..0x86].copy_from_slice(b"PE\0\0\x64\x86");
    bytes
}

/// A small PDF document.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

/// Plain UTF-8 text.
pub fn text() -> Vec<u8> {
    "Hello from goftgu — سلام!\nsecond line\n"
        .as_bytes()
        .to_vec()
}
