//! Recognising what a server actually sent from the first bytes of the body.
//!
//! Mirrors such as Google Drive answer a download with an HTML page (a virus-scan warning, a
//! quota notice, a login form) and status 200. Checking the magic bytes of the expected kind
//! before writing the rest catches this at once and lets the error name the page.

use std::fmt;

use serde::Serialize;

use crate::manifest::FileKind;

/// How many leading bytes [`sniff`] wants to see.
pub const SNIFF_LEN: usize = 1024;

/// What the start of a body looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "looks_like", rename_all = "snake_case")]
pub enum Sniffed {
    /// It starts with the magic bytes of the expected kind.
    Expected,
    /// It is an HTML (or XML) page; `title` is its `<title>` when there is one.
    Html {
        /// The page's title.
        title: Option<String>,
    },
    /// Something else; `head` is the first bytes in hex.
    Other {
        /// The first bytes, hex.
        head: String,
    },
}

impl fmt::Display for Sniffed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sniffed::Expected => f.write_str("the expected content"),
            Sniffed::Html { title: Some(t) } => write!(f, "an HTML page titled \"{t}\""),
            Sniffed::Html { title: None } => f.write_str("an HTML page"),
            Sniffed::Other { head } => write!(f, "content starting with bytes {head}"),
        }
    }
}

/// Classifies the first bytes of a body (up to [`SNIFF_LEN`]) against the expected kind.
pub fn sniff(head: &[u8], kind: FileKind) -> Sniffed {
    if kind.matches(head) {
        return Sniffed::Expected;
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(SNIFF_LEN)]).to_ascii_lowercase();
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let html_start = ["<!doctype html", "<html", "<head", "<body", "<?xml", "<!--"];
    if html_start.iter().any(|s| trimmed.starts_with(s)) || text.contains("<html") {
        return Sniffed::Html {
            title: html_title(&String::from_utf8_lossy(head)),
        };
    }
    let shown = &head[..head.len().min(8)];
    Sniffed::Other {
        head: shown
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The text of the first `<title>` element, whitespace collapsed.
fn html_title(page: &str) -> Option<String> {
    let lower = page.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = page
        .get(start..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_drive_warning_page_is_named() {
        let page = b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>";
        assert_eq!(
            sniff(page, FileKind::Zip),
            Sniffed::Html {
                title: Some("Google Drive - Virus scan warning".to_string())
            }
        );
    }

    #[test]
    fn magic_bytes_are_recognised() {
        assert_eq!(sniff(b"PK\x03\x04rest", FileKind::Zip), Sniffed::Expected);
        assert_eq!(
            sniff(b"\x1f\x8b\x08\x00", FileKind::TarGz),
            Sniffed::Expected
        );
        assert_eq!(
            sniff(b"\x1f\x8b\x08\x00", FileKind::Zip),
            Sniffed::Other {
                head: "1f 8b 08 00".to_string()
            }
        );
    }
}
