//! Building archives for tests, including hostile ones that well-behaved writers refuse to
//! make (`../` names, absolute paths, escaping links).

use std::io::{Cursor, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

/// One archive member.
#[derive(Debug, Clone)]
pub enum Member {
    /// A regular file.
    File(Vec<u8>),
    /// A folder.
    Dir,
    /// A symbolic link to this target.
    Symlink(String),
    /// A hard link to this member name.
    HardLink(String),
}

/// A list of (raw name, member) pairs.
pub type Members = Vec<(String, Member)>;

/// A file member.
pub fn file(name: &str, bytes: impl Into<Vec<u8>>) -> (String, Member) {
    (name.to_string(), Member::File(bytes.into()))
}

/// Writes members into a gzip-compressed tar, names copied byte for byte.
pub fn tar_gz(members: &Members) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, member) in members {
        let mut header = tar::Header::new_gnu();
        let (kind, data): (tar::EntryType, &[u8]) = match member {
            Member::File(bytes) => (tar::EntryType::Regular, bytes),
            Member::Dir => (tar::EntryType::Directory, &[]),
            Member::Symlink(_) => (tar::EntryType::Symlink, &[]),
            Member::HardLink(_) => (tar::EntryType::Link, &[]),
        };
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        assert!(
            name.len() < 100,
            "test member names must fit the old header"
        );
        let slot = &mut header.as_old_mut().name;
        slot.fill(0);
        slot[..name.len()].copy_from_slice(name.as_bytes());
        if let Member::Symlink(target) | Member::HardLink(target) = member {
            header.set_link_name_literal(target.as_bytes()).unwrap();
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Writes members into a zip (deflated); `zip64` marks every entry as a large file.
pub fn zip(members: &Members, zip64: bool) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(zip64);
    for (name, member) in members {
        match member {
            Member::File(bytes) => {
                writer.start_file(name.as_str(), options).unwrap();
                writer.write_all(bytes).unwrap();
            }
            Member::Dir => writer.add_directory(name.as_str(), options).unwrap(),
            Member::Symlink(target) => writer
                .add_symlink(name.as_str(), target.as_str(), options)
                .unwrap(),
            Member::HardLink(_) => panic!("zip has no hard links"),
        }
    }
    writer.finish().unwrap().into_inner()
}
