//! Turning an archive entry's raw name into a safe path inside the extraction folder.
//!
//! Archive names are attacker-controlled. A name is accepted only if it is relative, has no
//! `..` component, no drive prefix and no NUL byte; backslashes count as separators, as some
//! Windows zip tools write them. Names that only hold macOS metadata (`__MACOSX/`, `._*`) are
//! reported as skippable.

use std::path::{Component, Path, PathBuf};

/// What to do with an entry name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryName {
    /// Extract to this relative path.
    Path(PathBuf),
    /// Skip it, for this reason.
    Skip(&'static str),
    /// Refuse the whole archive, for this reason.
    Unsafe(&'static str),
}

/// Checks a raw entry name.
pub fn check_name(raw: &[u8]) -> EntryName {
    if raw.contains(&0) {
        return EntryName::Unsafe("the name contains a NUL byte");
    }
    let name = String::from_utf8_lossy(raw).replace('\\', "/");
    if name.starts_with('/') {
        return EntryName::Unsafe("the path is absolute");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return EntryName::Unsafe("the path starts with a drive letter");
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" | "." => continue,
            ".." => return EntryName::Unsafe("the path contains `..`"),
            "__MACOSX" => return EntryName::Skip("macOS resource fork folder (__MACOSX)"),
            _ if part.starts_with("._") => return EntryName::Skip("AppleDouble file (._*)"),
            _ => path.push(part),
        }
    }
    if path.as_os_str().is_empty() {
        EntryName::Skip("empty name")
    } else {
        EntryName::Path(path)
    }
}

/// Whether a link at `link` (relative to the root) pointing to `target` stays inside the root,
/// judged on the names alone. Callers must also make sure `link`'s parents are no links.
pub fn link_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth: Vec<&std::ffi::OsStr> = Vec::new();
    let parent = link.parent().unwrap_or(Path::new(""));
    for component in parent.components().chain(target.components()) {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_names_are_normalised() {
        assert_eq!(
            check_name(b"./a//b/c.jpg"),
            EntryName::Path(PathBuf::from("a/b/c.jpg"))
        );
        assert_eq!(
            check_name(b"a\\b.jpg"),
            EntryName::Path(PathBuf::from("a/b.jpg"))
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for raw in [
            &b"/etc/passwd"[..],
            b"a/../../x",
            b"..",
            b"C:/x",
            b"\\\\server\\x",
            b"a\0b",
        ] {
            assert!(matches!(check_name(raw), EntryName::Unsafe(_)), "{raw:?}");
        }
    }

    #[test]
    fn mac_metadata_is_skipped() {
        assert!(matches!(
            check_name(b"__MACOSX/a/._b.jpg"),
            EntryName::Skip(_)
        ));
        assert!(matches!(check_name(b"dir/._b.jpg"), EntryName::Skip(_)));
    }

    #[test]
    fn link_targets() {
        assert!(link_stays_inside(Path::new("a/b/l"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("a/l"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("/etc")));
        assert!(!link_stays_inside(
            Path::new("a/l"),
            Path::new("b/../../../x")
        ));
    }
}
