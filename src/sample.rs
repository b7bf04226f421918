//! The bundled sample dataset: glyphs of 177 characters in 50 real typefaces, compiled into the
//! binary so that `lifted prepare-data sample` (and the main job) work with no network.
//!
//! The archive is `data/sample/glyphs.tar.gz`, made by `tools/sample/make_sample.py`; its
//! manifest (`manifests/sample.toml`) lists it as the source `bundled:glyphs.tar.gz` with its
//! SHA-256, so it goes through the same verification and extraction as a download.

//!
//! It is compiled in only with the `sample` feature (part of `cli`); without it there is no
//! bundled file, and preparing `sample` says so.

/// The bundled archive.
#[cfg(feature = "sample")]
const GLYPHS: &[u8] = include_bytes!("../data/sample/glyphs.tar.gz");

/// The bytes of a bundled file, by the name its manifest source uses.
pub(crate) fn bundled(name: &str) -> Option<&'static [u8]> {
    match name {
        #[cfg(feature = "sample")]
        "glyphs.tar.gz" => Some(GLYPHS),
        _ => None,
    }
}
