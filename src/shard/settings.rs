//! How images were turned into samples: the preprocessing settings that `pack` applies,
//! `index.json` records and `train` asks for. This is the one definition every stage uses.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::layout::Encoding;

/// Largest target size `pack` accepts, in pixels (a shard record stores sides as 16 bits; this
/// bound keeps one padded sample under 50 MB).
pub const MAX_SIZE: u32 = 4096;

/// How images are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// The short side becomes S, keeping the aspect ratio.
    ShortSide,
    /// The long side becomes S, then the image is centred on a white S×S square (the paper's
    /// preprocessing).
    PadSquare,
}

impl ResizeMode {
    /// The name used in `index.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeMode::ShortSide => "short-side",
            ResizeMode::PadSquare => "pad-square",
        }
    }
}

/// Whether images are cropped first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CropMode {
    /// The whole image.
    None,
    /// The dataset's bounding box (CUB-200, CARS-196).
    #[serde(rename = "bbox")]
    BBox,
}

impl CropMode {
    /// The name used in `index.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            CropMode::None => "none",
            CropMode::BBox => "bbox",
        }
    }
}

/// Preprocessing settings: what `pack` does to each image, as recorded in `index.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// The target size S.
    pub size: u32,
    /// How to scale.
    pub resize: ResizeMode,
    /// Whether to crop first.
    pub crop: CropMode,
    /// How samples are stored.
    pub encoding: Encoding,
    /// JPEG quality, 1 to 100 (absent for raw samples, which have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
}

/// Settings that cannot work, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The size is 0 or above [`MAX_SIZE`].
    #[error("the size must be 1 to {MAX_SIZE} pixels, not {0}")]
    Size(u32),
    /// A JPEG quality outside 1..=100, or none for JPEG.
    #[error("JPEG quality must be 1 to 100, not {0:?}")]
    Quality(Option<u8>),
}

impl Preprocess {
    /// JPEG at `quality`, short side `size`, no crop: `pack`'s default at size 256, quality 90.
    pub fn jpeg(size: u32, quality: u8) -> Preprocess {
        Preprocess {
            size,
            resize: ResizeMode::ShortSide,
            crop: CropMode::None,
            encoding: Encoding::Jpeg,
            quality: Some(quality),
        }
    }

    /// Raw RGB8, short side `size`, no crop.
    pub fn raw(size: u32) -> Preprocess {
        Preprocess {
            size,
            resize: ResizeMode::ShortSide,
            crop: CropMode::None,
            encoding: Encoding::Raw,
            quality: None,
        }
    }

    /// The same settings with the quality that applies: none for raw samples.
    pub fn normalized(self) -> Preprocess {
        Preprocess {
            quality: match self.encoding {
                Encoding::Raw => None,
                Encoding::Jpeg => self.quality,
            },
            ..self
        }
    }

    /// Checks the size and the quality.
    ///
    /// # Errors
    /// [`SettingsError::Size`] when the size is 0 or over [`MAX_SIZE`]; [`SettingsError::Quality`]
    /// when JPEG samples have no quality or one outside 1 to 100.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.size == 0 || self.size > MAX_SIZE {
            return Err(SettingsError::Size(self.size));
        }
        match (self.encoding, self.quality) {
            (Encoding::Jpeg, Some(q)) if (1..=100).contains(&q) => Ok(()),
            (Encoding::Raw, _) => Ok(()),
            (Encoding::Jpeg, q) => Err(SettingsError::Quality(q)),
        }
    }

    /// The folder-name suffix these settings give: `jpeg256`, `raw224-pad-bbox`, `jpeg256-q95`.
    pub fn folder_suffix(&self) -> String {
        let mut name = match self.encoding {
            Encoding::Jpeg => format!("jpeg{}", self.size),
            Encoding::Raw => format!("raw{}", self.size),
        };
        if self.resize == ResizeMode::PadSquare {
            name.push_str("-pad");
        }
        if self.crop == CropMode::BBox {
            name.push_str("-bbox");
        }
        if let Some(q) = self
            .quality
            .filter(|&q| self.encoding == Encoding::Jpeg && q != 90)
        {
            name.push_str(&format!("-q{q}"));
        }
        name
    }
}

impl fmt::Display for Preprocess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, {}, crop {}",
            match self.encoding {
                Encoding::Jpeg => "JPEG",
                Encoding::Raw => "raw",
            },
            self.size,
            self.resize.as_str(),
            self.crop.as_str()
        )?;
        if let Some(q) = self.quality {
            write!(f, ", quality {q}")?;
        }
        Ok(())
    }
}
