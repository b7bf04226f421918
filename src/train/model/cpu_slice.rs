//! A CPU tensor's storage read as one contiguous f32 slice, for the networks' CPU kernels
//! ([`super::conv`], batch norm, max pooling), which callers hand contiguous f32 tensors.

use candle_core::{CpuStorage, Layout, Result};

/// The f32 values `layout` covers in `storage`; `op` names the kernel in errors.
///
/// # Errors
/// When the storage is not f32 or the layout is not contiguous.
pub(super) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: tensors must be f32 on the CPU")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: tensors must be contiguous"),
    }
}
