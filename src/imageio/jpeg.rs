//! JPEG through libjpeg: decoding to RGB (CMYK and YCCK converted here) and encoding.
//!
//! The library is MozJPEG's build of libjpeg-turbo, from the `mozjpeg-sys` crate: it compiles
//! with a C compiler alone, and adds libjpeg-turbo's SIMD code when NASM is installed. The
//! pixels of every intact file are the same either way; on a file with damaged entropy data the
//! plain C inverse DCT wraps out-of-range values where the SIMD code (and so Pillow's wheel)
//! saturates them, which changes the damaged block only. Decoding uses libjpeg's defaults (the accurate integer IDCT
//! and fancy upsampling), as Pillow does, so pixels match Pillow's exactly; encoding uses
//! libjpeg-turbo's defaults (baseline, standard tables, 4:2:0), as Pillow does.
//!
//! **What is accepted** is what Pillow accepts, because the decoder is driven the way Pillow
//! drives it: libjpeg reads from a suspending source that has nothing after the file's last
//! byte. Recoverable damage (extraneous bytes between segments, a marker or a bad code inside the
//! entropy data, data after the end) gives a libjpeg warning, and the image decodes; the first
//! warning is returned for the record. A file that ends before every scanline is decoded makes
//! libjpeg wait for more data: that is Pillow's "image file is truncated", and an error here. A
//! file whose last bytes (the end marker, say) are missing after the last scanline is accepted,
//! as Pillow accepts it. libjpeg's fatal errors are errors. `tests/fixtures/jpeg-corpus/` holds
//! Pillow's verdicts on a corpus of crafted files (`tools/golden/jpeg_corpus.py`).
//!
//! One decoder and one encoder per thread are kept in thread-locals, so the hot paths (pack's
//! workers, the loader's workers) allocate no libjpeg state per image.

use std::cell::RefCell;
use std::ffi::{c_int, c_long, c_ulong};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use mozjpeg_sys as ffi;

use super::decode::{DecodeError, Format, Rgb8Image, check_size};

thread_local! {
    static DECODER: RefCell<Option<Box<Decoder>>> = const { RefCell::new(None) };
    static ENCODER: RefCell<Option<Box<Encoder>>> = const { RefCell::new(None) };
}

/// A decoded JPEG's size, and the warning libjpeg gave for recoverable damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// libjpeg's first warning, if it recovered from damage.
    pub warning: Option<String>,
}

/// The encoder failed (its own message is the source).
#[derive(Debug, thiserror::Error)]
#[error("the JPEG encoder failed")]
pub struct EncodeError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// Width and height from a JPEG header, without decoding.
///
/// # Errors
/// [`DecodeError::Jpeg`] when libjpeg cannot read the header (the bytes are not a JPEG, or it is
/// damaged); [`DecodeError::Truncated`] when the file ends inside the header; [`DecodeError::Size`]
/// when the image has no pixels or is over the size limits.
pub fn dimensions(bytes: &[u8]) -> Result<(usize, usize), DecodeError> {
    with_decoder(|d| d.run(|d| d.header(bytes)))
}

/// Decodes a JPEG to RGB8, with the warning of a damaged but readable file.
///
/// # Errors
/// Whatever [`decode_into`] returns.
pub fn decode(bytes: &[u8]) -> Result<(Rgb8Image, Option<String>), DecodeError> {
    let mut pixels = Vec::new();
    let decoded = decode_into(bytes, &mut pixels)?;
    pixels.truncate(decoded.width * decoded.height * 3);
    Ok((
        Rgb8Image {
            width: decoded.width as u32,
            height: decoded.height as u32,
            pixels,
        },
        decoded.warning,
    ))
}

/// Decodes a JPEG to RGB8 into the first `width * height * 3` bytes of `buffer`, which grows
/// as needed and is otherwise reused as is (hot loops keep one per thread).
///
/// # Errors
/// [`DecodeError::Jpeg`] when libjpeg stops on a fatal error (the bytes are not a JPEG, or are
/// damaged beyond recovery); [`DecodeError::Truncated`] when the file ends before every scanline is
/// decoded; [`DecodeError::Size`] when the image has no pixels or is over the size limits.
pub fn decode_into(bytes: &[u8], buffer: &mut Vec<u8>) -> Result<Decoded, DecodeError> {
    with_decoder(|d| d.run(|d| d.decode(bytes, buffer, Scale::Full)))
}

/// Whether libjpeg runs its SIMD code for the inverse DCT on this machine: true when it was
/// built with NASM (x86) and the CPU has SSE2/AVX2. Intact files decode to the same pixels
/// either way (see the module documentation for damaged ones); the speed differs.
pub fn simd() -> bool {
    unsafe extern "C" {
        // libjpeg-turbo's own probe, defined in both its SIMD and its plain build.
        fn jsimd_can_idct_islow() -> c_int;
    }
    // SAFETY: the probe takes nothing and only reads the CPU's features (once, cached by
    // libjpeg-turbo itself).
    unsafe { jsimd_can_idct_islow() != 0 }
}

/// Whether a JPEG decodes, and its warning, at the cost of a fraction of a decode: libjpeg
/// reads and entropy-decodes every byte of the file exactly as [`decode`] does (so the
/// verdict and the warning are the same), but outputs it at 1/8 scale, which skips most of
/// the inverse DCT, upsampling and colour conversion. For checks that keep no pixels.
///
/// # Errors
/// The same errors as [`decode`].
pub fn check(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut pixels = Vec::new();
    with_decoder(|d| d.run(|d| d.decode(bytes, &mut pixels, Scale::Eighth)))
}

/// The output scale of a decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// Every pixel.
    Full,
    /// 1/8 of each side (the DC coefficients only).
    Eighth,
}

/// Encodes RGB8 pixels as a baseline JPEG with 4:2:0 chroma subsampling (Pillow's default).
///
/// # Errors
/// [`EncodeError`] when `width` or `height` is 0, `pixels` holds fewer than `width * height * 3`
/// bytes, or libjpeg stops on a fatal error.
pub fn encode(
    pixels: &[u8],
    width: usize,
    height: usize,
    quality: u8,
) -> Result<Vec<u8>, EncodeError> {
    if pixels.len() < width * height * 3 || width == 0 || height == 0 {
        return Err(EncodeError(
            format!(
                "{} bytes cannot be a {width}x{height} RGB image",
                pixels.len()
            )
            .into(),
        ));
    }
    ENCODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let encoder = slot.get_or_insert_with(Encoder::new);
        // SAFETY: `encode` hands libjpeg only pointers into `pixels` (checked above to hold the
        // whole image) and into the encoder's own boxed, unmoved state; a fatal libjpeg error
        // unwinds out of `error_exit` (C-unwind; mozjpeg-sys compiles libjpeg with unwinding
        // tables) and is caught here.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe {
            encoder.encode(pixels, width, height, quality)
        }));
        match result {
            Ok(bytes) => Ok(bytes),
            Err(payload) => {
                // The libjpeg object is in an unknown state: make a new one next time.
                *slot = None;
                Err(EncodeError(fatal_message(payload).into()))
            }
        }
    })
}

/// A fatal libjpeg error, carried out of `error_exit` by unwinding (without the panic hook, so
/// nothing is printed).
struct Fatal(String);

/// The message of a caught unwind, which must be a [`Fatal`].
fn fatal_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<Fatal>() {
        Ok(fatal) => fatal.0,
        Err(other) => resume_unwind(other),
    }
}

/// The error manager: libjpeg's, plus the first warning's text.
#[repr(C)]
struct ErrorState {
    /// libjpeg's part; it must be first, so that `cinfo.err` points at this whole struct.
    public: ffi::jpeg_error_mgr,
    first_warning: Option<String>,
}

impl ErrorState {
    fn install(&mut self) {
        // SAFETY: `jpeg_std_error` only fills in the struct it is given.
        unsafe { ffi::jpeg_std_error(&mut self.public) };
        self.public.error_exit = Some(error_exit);
        self.public.emit_message = Some(emit_message);
        self.public.output_message = Some(output_message);
    }
}

/// The text of the message libjpeg has just raised.
fn message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    let buffer = [0u8; 80];
    // SAFETY: `cinfo.err` points at the error manager libjpeg was given; `format_message`
    // writes at most 80 bytes (JMSG_LENGTH_MAX) into the buffer, NUL-terminated.
    unsafe {
        if let Some(format) = (*cinfo.err).format_message {
            format(cinfo, &buffer);
        }
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).trim().to_string()
}

/// libjpeg's `error_exit`: leaves libjpeg by unwinding with the message.
extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let text = message(cinfo);
    resume_unwind(Box::new(Fatal(text)));
}

/// libjpeg's `emit_message`: counts warnings (level < 0) and keeps the first one's text; trace
/// messages (level ≥ 0) are ignored, as Pillow ignores them.
extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    if level >= 0 {
        return;
    }
    let text = message(cinfo);
    // SAFETY: `cinfo.err` points at the `public` field of an `ErrorState`, its first field
    // (`repr(C)`), installed by `ErrorState::install`; nothing else borrows it during the call.
    let state = unsafe { &mut *cinfo.err.cast::<ErrorState>() };
    state.public.num_warnings += 1;
    state.first_warning.get_or_insert(text);
}

/// libjpeg's `output_message`: prints nothing.
extern "C-unwind" fn output_message(_cinfo: &mut ffi::jpeg_common_struct) {}

/// A suspending source over one in-memory file: when libjpeg wants bytes past its end, it is
/// told to wait for more, which never come (Pillow's source, fed the whole file).
#[repr(C)]
struct Source {
    /// libjpeg's part; first, so that `cinfo.src` points at this whole struct.
    public: ffi::jpeg_source_mgr,
}

extern "C-unwind" fn init_source(_cinfo: &mut ffi::jpeg_decompress_struct) {}

extern "C-unwind" fn term_source(_cinfo: &mut ffi::jpeg_decompress_struct) {}

extern "C-unwind" fn fill_input_buffer(_cinfo: &mut ffi::jpeg_decompress_struct) -> ffi::boolean {
    0 // suspend: there is no more data
}

extern "C-unwind" fn skip_input_data(cinfo: &mut ffi::jpeg_decompress_struct, count: c_long) {
    // SAFETY: `cinfo.src` points at the decoder's `Source`, whose buffer fields describe the
    // unread rest of the caller's byte slice.
    let source = unsafe { &mut *cinfo.src };
    let count = usize::try_from(count).unwrap_or(0);
    let step = count.min(source.bytes_in_buffer);
    // SAFETY: `step` is at most the bytes left, so the pointer stays within the slice (or one
    // past its end).
    source.next_input_byte = unsafe { source.next_input_byte.add(step) };
    source.bytes_in_buffer -= step;
}

/// A libjpeg decompressor with its error manager and source, boxed so that the pointers
/// between them stay valid.
struct Decoder {
    cinfo: ffi::jpeg_decompress_struct,
    err: ErrorState,
    src: Source,
}

impl Decoder {
    fn new() -> Box<Decoder> {
        // SAFETY: all three structs are C plain data for which all-zero bytes is a valid
        // value (null pointers, `None` callbacks, zero numbers).
        let mut decoder: Box<Decoder> = Box::new(unsafe { std::mem::zeroed() });
        decoder.err.install();
        let d = &mut *decoder;
        d.cinfo.common.err = &mut d.err.public;
        // SAFETY: `cinfo` is zeroed with its error manager set, as `jpeg_create_decompress`
        // requires; the box keeps every address stable from here on.
        unsafe { ffi::jpeg_create_decompress(&mut d.cinfo) };
        d.src.public.init_source = Some(init_source);
        d.src.public.fill_input_buffer = Some(fill_input_buffer);
        d.src.public.skip_input_data = Some(skip_input_data);
        d.src.public.resync_to_restart = Some(ffi::jpeg_resync_to_restart);
        d.src.public.term_source = Some(term_source);
        d.cinfo.src = &mut d.src.public;
        decoder
    }

    /// Runs `step` with libjpeg's fatal errors caught; afterwards the decompressor is reset
    /// for the next file.
    fn run<T>(
        &mut self,
        step: impl FnOnce(&mut Decoder) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        self.err.first_warning = None;
        self.err.public.num_warnings = 0;
        let result = catch_unwind(AssertUnwindSafe(|| step(self)));
        // SAFETY: aborting returns the object to its idle state whatever state it was left in,
        // including after an error (libjpeg's documented recovery).
        unsafe { ffi::jpeg_abort_decompress(&mut self.cinfo) };
        self.src.public.next_input_byte = std::ptr::null();
        self.src.public.bytes_in_buffer = 0;
        match result {
            Ok(result) => result,
            Err(payload) => Err(DecodeError::Jpeg(fatal_message(payload))),
        }
    }

    /// Points the source at `bytes` and reads the header; the size is checked.
    fn header(&mut self, bytes: &[u8]) -> Result<(usize, usize), DecodeError> {
        self.src.public.next_input_byte = bytes.as_ptr();
        self.src.public.bytes_in_buffer = bytes.len();
        // SAFETY: the source points into `bytes`, which outlives this call and the decode that
        // follows it in `decode` (the source is cleared in `run` before `bytes` can go).
        let status = unsafe { ffi::jpeg_read_header(&mut self.cinfo, 1) };
        // 1 is JPEG_HEADER_OK; 0 (JPEG_SUSPENDED) means the header runs past the file's end.
        if status != 1 {
            return Err(DecodeError::Truncated {
                format: Format::Jpeg,
            });
        }
        let (width, height) = (self.cinfo.image_width, self.cinfo.image_height);
        check_size(u64::from(width), u64::from(height))?;
        Ok((width as usize, height as usize))
    }

    /// Decodes the whole file; the size returned is the file's, the pixels are at `scale`.
    fn decode(
        &mut self,
        bytes: &[u8],
        buffer: &mut Vec<u8>,
        scale: Scale,
    ) -> Result<Decoded, DecodeError> {
        let (width, height) = self.header(bytes)?;
        // `jpeg_read_header` has just reset every parameter to its default (scale 1/1).
        if scale == Scale::Eighth {
            self.cinfo.scale_num = 1;
            self.cinfo.scale_denom = 8;
        }
        let cmyk = matches!(
            self.cinfo.jpeg_color_space,
            ffi::J_COLOR_SPACE::JCS_CMYK | ffi::J_COLOR_SPACE::JCS_YCCK
        );
        self.cinfo.out_color_space = if cmyk {
            ffi::J_COLOR_SPACE::JCS_CMYK
        } else {
            ffi::J_COLOR_SPACE::JCS_RGB
        };
        let channels = if cmyk { 4 } else { 3 };
        // SAFETY: the header was read; start_decompress only reads from the source.
        if unsafe { ffi::jpeg_start_decompress(&mut self.cinfo) } == 0 {
            return Err(DecodeError::Truncated {
                format: Format::Jpeg,
            });
        }
        let (out_width, out_height) = (
            self.cinfo.output_width as usize,
            self.cinfo.output_height as usize,
        );
        let stride = out_width * channels;
        let needed = stride * out_height;
        if buffer.len() < needed {
            buffer.resize(needed, 0);
        }
        let mut rows: Vec<*mut u8> = buffer[..needed]
            .chunks_exact_mut(stride)
            .map(<[u8]>::as_mut_ptr)
            .collect();
        while (self.cinfo.output_scanline as usize) < out_height {
            let done = self.cinfo.output_scanline as usize;
            // SAFETY: each row pointer addresses `stride` writable bytes of `buffer`, which is
            // the output width times the output components libjpeg writes per row; libjpeg
            // writes at most `out_height - done` rows starting at `rows[done]`.
            let read = unsafe {
                ffi::jpeg_read_scanlines(
                    &mut self.cinfo,
                    rows[done..].as_mut_ptr(),
                    (out_height - done) as ffi::JDIMENSION,
                )
            };
            if read == 0 {
                // libjpeg is waiting for bytes the file does not have: Pillow's "truncated".
                return Err(DecodeError::Truncated {
                    format: Format::Jpeg,
                });
            }
        }
        // Every row is decoded; whether the file also ends properly does not matter (Pillow
        // accepts a file that lacks only what follows the last row).
        // SAFETY: all scanlines were read, as `jpeg_finish_decompress` requires.
        unsafe { ffi::jpeg_finish_decompress(&mut self.cinfo) };
        if cmyk {
            cmyk_to_rgb_in_place(&mut buffer[..needed]);
        }
        Ok(Decoded {
            width,
            height,
            warning: self.err.first_warning.take(),
        })
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the object was created by `jpeg_create_decompress` and is not used again.
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

fn with_decoder<T>(
    f: impl FnOnce(&mut Decoder) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    DECODER.with(|cell| f(cell.borrow_mut().get_or_insert_with(Decoder::new)))
}

/// A libjpeg compressor with its error manager, boxed so that the pointer between them stays
/// valid.
struct Encoder {
    cinfo: ffi::jpeg_compress_struct,
    err: ErrorState,
}

impl Encoder {
    fn new() -> Box<Encoder> {
        // SAFETY: both structs are C plain data for which all-zero bytes is a valid value.
        let mut encoder: Box<Encoder> = Box::new(unsafe { std::mem::zeroed() });
        encoder.err.install();
        let e = &mut *encoder;
        e.cinfo.common.err = &mut e.err.public;
        // SAFETY: `cinfo` is zeroed with its error manager set; the box keeps it in place.
        unsafe { ffi::jpeg_create_compress(&mut e.cinfo) };
        encoder
    }

    /// Compresses `width`×`height` RGB8 `pixels` (at least that many bytes).
    ///
    /// # Safety
    /// Must run inside `catch_unwind`: a libjpeg error unwinds out of it.
    unsafe fn encode(
        &mut self,
        pixels: &[u8],
        width: usize,
        height: usize,
        quality: u8,
    ) -> Vec<u8> {
        let c = &mut self.cinfo;
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut size: c_ulong = 0;
        // SAFETY: (for the whole block) `out` and `size` outlive the compression; libjpeg allocates
        // the output with malloc and reports it through them at `jpeg_finish_compress`.
        unsafe {
            ffi::jpeg_mem_dest(c, &mut out, &mut size);
            c.image_width = width as ffi::JDIMENSION;
            c.image_height = height as ffi::JDIMENSION;
            c.input_components = 3;
            c.in_color_space = ffi::J_COLOR_SPACE::JCS_RGB;
            // libjpeg-turbo's defaults (baseline, Annex K tables, no MozJPEG extras), as Pillow.
            ffi::jpeg_c_set_int_param(
                c,
                ffi::J_INT_PARAM::JINT_COMPRESS_PROFILE,
                ffi::JINT_COMPRESS_PROFILE_VALUE::JCP_FASTEST as c_int,
            );
            ffi::jpeg_set_defaults(c);
            ffi::jpeg_set_quality(c, c_int::from(quality), 1);
            ffi::jpeg_start_compress(c, 1);
            let stride = width * 3;
            let rows: Vec<*const u8> = pixels[..stride * height]
                .chunks_exact(stride)
                .map(<[u8]>::as_ptr)
                .collect();
            while (c.next_scanline as usize) < height {
                let done = c.next_scanline as usize;
                ffi::jpeg_write_scanlines(
                    c,
                    rows[done..].as_ptr(),
                    (height - done) as ffi::JDIMENSION,
                );
            }
            ffi::jpeg_finish_compress(c);
            let bytes = std::slice::from_raw_parts(out, size as usize).to_vec();
            libc::free(out.cast());
            bytes
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the object was created by `jpeg_create_compress` and is not used again.
        unsafe { ffi::jpeg_destroy_compress(&mut self.cinfo) };
    }
}

/// Converts libjpeg's CMYK output to RGB as PIL does, in place (the RGB pixels end up in the
/// first three quarters). libjpeg returns Adobe CMYK as stored, inverted (C' = 255 − C); PIL's
/// R = (255 − K)(255 − C)/255 is therefore C'·K'/255.
fn cmyk_to_rgb_in_place(pixels: &mut [u8]) {
    for i in 0..pixels.len() / 4 {
        let k = u32::from(pixels[4 * i + 3]);
        for c in 0..3 {
            let value = (u32::from(pixels[4 * i + c]) * k + 127) / 255;
            // Writing pixel i's RGB never overwrites CMYK bytes not yet read (3i + c < 4i + c).
            pixels[3 * i + c] = value as u8;
        }
    }
}
