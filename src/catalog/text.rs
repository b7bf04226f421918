//! Reading the whitespace-separated annotation files of SOP and CUB, with line numbers in
//! every error.

use std::path::{Path, PathBuf};

use super::CatalogError;

/// A whole annotation file.
pub(crate) struct TextFile {
    pub path: PathBuf,
    content: String,
}

impl TextFile {
    /// Reads a file the format requires; a missing file is [`CatalogError::MissingFile`].
    pub fn open(path: &Path) -> Result<TextFile, CatalogError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(TextFile {
                path: path.to_path_buf(),
                content: String::from_utf8_lossy(crate::fsutil::strip_bom_bytes(&bytes))
                    .into_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CatalogError::MissingFile {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(CatalogError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The non-blank lines after `skip` header lines, each split into exactly `form.len()`
    /// fields; `form` names the fields for error messages.
    pub fn records<'a>(
        &'a self,
        skip: usize,
        form: &'a [&'a str],
    ) -> impl Iterator<Item = Result<Record<'a>, CatalogError>> + 'a {
        self.content
            .lines()
            .enumerate()
            .skip(skip)
            .filter(|(_, line)| !line.trim().is_empty())
            .map(move |(index, line)| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() != form.len() {
                    return Err(CatalogError::Malformed {
                        path: self.path.clone(),
                        line: index + 1,
                        reason: format!(
                            "expected {} fields `{}`, found {}: `{}`",
                            form.len(),
                            form.join(" "),
                            fields.len(),
                            line.trim()
                        ),
                    });
                }
                Ok(Record {
                    path: &self.path,
                    line: index + 1,
                    fields,
                    form,
                })
            })
    }

    /// The first line, trimmed.
    pub fn first_line(&self) -> &str {
        self.content.lines().next().unwrap_or("").trim()
    }
}

/// One line of an annotation file, split into fields.
pub(crate) struct Record<'a> {
    path: &'a Path,
    pub line: usize,
    fields: Vec<&'a str>,
    form: &'a [&'a str],
}

impl<'a> Record<'a> {
    /// Field `i` as text.
    pub fn text(&self, i: usize) -> &'a str {
        self.fields[i]
    }

    /// Field `i` as a positive integer id.
    pub fn id(&self, i: usize) -> Result<u32, CatalogError> {
        match self.fields[i].parse::<u32>() {
            Ok(id) if id >= 1 => Ok(id),
            _ => Err(self.error(format!(
                "{} must be a positive integer, found `{}`",
                self.form[i], self.fields[i]
            ))),
        }
    }

    /// Field `i` as a finite number.
    pub fn number(&self, i: usize) -> Result<f32, CatalogError> {
        match self.fields[i].parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(format!(
                "{} must be a number, found `{}`",
                self.form[i], self.fields[i]
            ))),
        }
    }

    /// A [`CatalogError::Malformed`] for this line.
    pub fn error(&self, reason: String) -> CatalogError {
        CatalogError::Malformed {
            path: self.path.to_path_buf(),
            line: self.line,
            reason,
        }
    }
}
