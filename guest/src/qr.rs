//! Enrollment bundles from QR code images: `latchkey-guest enroll --qr-image FILE.png`.
//!
//! The QR text is the compact JSON bundle (`latchkey-issuer enroll-guest --qr-png`). The
//! image holds the guest's secret key, so, like a bundle file, one that group or others can
//! read is refused. Decoding is bounded: the file size, the image's dimensions and the
//! decoder's allocations are capped.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits};
use zeroize::{Zeroize, Zeroizing};

use crate::bundle::{BundleError, read_error};
use crate::private_file::read_private_bytes;

/// Largest image file read.
pub const MAX_QR_IMAGE_LEN: u64 = 16 * 1024 * 1024;
/// Largest width or height decoded, in pixels.
pub const MAX_QR_IMAGE_SIDE: u32 = 8192;
/// Most memory the PNG decoder may allocate.
const MAX_DECODER_ALLOC: u64 = 256 * 1024 * 1024;

/// The text of the (first decodable) QR code in a PNG file.
pub fn read_qr_png(path: &Path) -> Result<Zeroizing<String>, BundleError> {
    let bytes = read_private_bytes(path, MAX_QR_IMAGE_LEN)
        .map_err(|e| read_error(path, e, MAX_QR_IMAGE_LEN))?;
    decode_png(&bytes).map_err(|detail| BundleError::QrImage {
        path: path.to_owned(),
        detail,
    })
}

/// The text of the first decodable QR code in PNG bytes.
pub fn decode_png(bytes: &[u8]) -> Result<Zeroizing<String>, String> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_QR_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_QR_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    let grey = image.into_luma8();
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let mut pixels = grey.into_raw();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = prepared.detect_grids();
    pixels.zeroize();
    if grids.is_empty() {
        return Err("no QR code found in the image".to_owned());
    }
    let mut last_error = String::new();
    for g in grids {
        match g.decode() {
            Ok((_, text)) => return Ok(Zeroizing::new(text)),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(format!("the QR code does not decode: {last_error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_without_a_qr_code_or_not_a_png_is_refused_with_the_reason() {
        let mut blank = Vec::new();
        image::GrayImage::from_pixel(64, 64, image::Luma([255u8]))
            .write_to(&mut Cursor::new(&mut blank), ImageFormat::Png)
            .unwrap();
        assert_eq!(
            decode_png(&blank).unwrap_err(),
            "no QR code found in the image"
        );
        assert!(
            decode_png(b"not a png")
                .unwrap_err()
                .contains("not a readable PNG")
        );
    }

    #[test]
    fn an_oversized_image_is_refused_before_decoding() {
        // A PNG header claiming 100000 x 100000 pixels.
        let header = {
            let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
            let mut ihdr = Vec::new();
            ihdr.extend_from_slice(&100_000u32.to_be_bytes());
            ihdr.extend_from_slice(&100_000u32.to_be_bytes());
            ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
            v.extend_from_slice(&13u32.to_be_bytes());
            let mut chunk = b"IHDR".to_vec();
            chunk.extend_from_slice(&ihdr);
            let crc = crc32(&chunk);
            v.extend_from_slice(&chunk);
            v.extend_from_slice(&crc.to_be_bytes());
            v
        };
        let e = decode_png(&header).unwrap_err();
        assert!(e.contains("not a readable PNG"), "{e}");
        assert!(e.to_lowercase().contains("limit"), "the dimension cap: {e}");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
