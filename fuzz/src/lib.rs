//! Helpers shared by the fuzz targets: canonical writers for what the parsers return, so a
//! target can check that a parsed value survives a write and a second parse, and a scanner
//! for the HTML the portal's sanitizer emits.

pub mod html;
pub mod smtp;

/// Whether `text` holds a control character (C0, DEL or C1): nothing a parser hands on may,
/// since it could end up in a header line or a log.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Reads a little-endian `u16` from the front of `data` (missing bytes count as zero) and
/// returns it with the rest: how a target takes its settings from the fuzzer's input.
pub fn take_u16(data: &[u8]) -> (u16, &[u8]) {
    let lo = data.first().copied().unwrap_or(0);
    let hi = data.get(1).copied().unwrap_or(0);
    (
        u16::from_le_bytes([lo, hi]),
        data.get(2..).unwrap_or_default(),
    )
}
