//! Hashing a file once for every digest the manifest asks for, and comparing the result.
//!
//! Verification is layered: the exact byte size first (cheap, catches most truncations), then
//! every published hash. SHA-256 is always computed, so summaries can record it even for files
//! whose manifest only gives an MD5.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use indicatif::ProgressBar;
use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::SourceFile;

/// The size and hashes of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Digests {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// MD5, lower-case hex, when it was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

/// How a file differs from its manifest entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "lowercase")]
pub enum Mismatch {
    /// The byte size differs.
    Size {
        /// What the manifest says.
        expected: u64,
        /// What the file has.
        actual: u64,
    },
    /// The SHA-256 differs.
    Sha256 {
        /// What the manifest says.
        expected: String,
        /// What the file has.
        actual: String,
    },
    /// The SHA-256 does not start with the published prefix.
    #[serde(rename = "sha256-prefix")]
    Sha256Prefix {
        /// The published start of the hash.
        expected: String,
        /// The file's whole hash.
        actual: String,
    },
    /// The MD5 differs.
    Md5 {
        /// What the manifest says.
        expected: String,
        /// What the file has.
        actual: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Size { expected, actual } => {
                write!(f, "size is {actual} bytes, expected {expected}")
            }
            Mismatch::Sha256 { expected, actual } => {
                write!(f, "SHA-256 mismatch: expected {expected}, actual {actual}")
            }
            Mismatch::Sha256Prefix { expected, actual } => write!(
                f,
                "SHA-256 mismatch: expected one starting with {expected}, actual {actual}"
            ),
            Mismatch::Md5 { expected, actual } => {
                write!(f, "MD5 mismatch: expected {expected}, actual {actual}")
            }
        }
    }
}

/// Hashes a file, computing MD5 too when `with_md5` is set; advances `bar` by bytes read.
///
/// # Errors
/// The I/O error when the file cannot be opened or read.
pub fn digest_file(path: &Path, with_md5: bool, bar: &ProgressBar) -> io::Result<Digests> {
    let mut file = File::open(path)?;
    let mut sha256 = Sha256::new();
    let mut md5 = with_md5.then(Md5::new);
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha256.update(&buf[..n]);
        if let Some(md5) = md5.as_mut() {
            md5.update(&buf[..n]);
        }
        size += n as u64;
        bar.inc(n as u64);
    }
    Ok(Digests {
        size,
        sha256: hex::encode(sha256.finalize()),
        md5: md5.map(|m| hex::encode(m.finalize())),
    })
}

/// Hashes a byte slice the same way as [`digest_file`].
pub fn digest_bytes(bytes: &[u8], with_md5: bool) -> Digests {
    Digests {
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        md5: with_md5.then(|| hex::encode(Md5::digest(bytes))),
    }
}

/// Compares a file's digests with its manifest entry; returns every difference found.
pub fn compare(file: &SourceFile, digests: &Digests) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    if let Some(expected) = file.size
        && expected != digests.size
    {
        mismatches.push(Mismatch::Size {
            expected,
            actual: digests.size,
        });
    }
    if let Some(expected) = &file.sha256
        && *expected != digests.sha256
    {
        mismatches.push(Mismatch::Sha256 {
            expected: expected.clone(),
            actual: digests.sha256.clone(),
        });
    }
    if let Some(prefix) = &file.sha256_prefix
        && !digests.sha256.starts_with(prefix.as_str())
    {
        mismatches.push(Mismatch::Sha256Prefix {
            expected: prefix.clone(),
            actual: digests.sha256.clone(),
        });
    }
    if let (Some(expected), Some(actual)) = (&file.md5, &digests.md5)
        && expected != actual
    {
        mismatches.push(Mismatch::Md5 {
            expected: expected.clone(),
            actual: actual.clone(),
        });
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        // Test vectors from FIPS 180-2 and RFC 1321.
        let d = digest_bytes(b"abc", true);
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.md5.as_deref(), Some("900150983cd24fb0d6963f7d28e17f72"));
    }
}
