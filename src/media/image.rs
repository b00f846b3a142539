//! Photos made small enough for a vision model: models scale anything
//! larger down themselves, so sending more pixels only costs upload time
//! and tokens.

use base64::Engine as _;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// No phone camera comes near this; a header that claims more is a
/// decompression bomb, refused before any pixel is allocated.
const MAX_SIDE_PIXELS: u32 = 12_000;
/// Decoded pixels plus the decoder's own buffers: room for a 48-megapixel
/// RGB photo, far from what the server can spare.
const MAX_ALLOC_BYTES: u64 = 256 * 1024 * 1024;
/// Visually near the original at a fraction of its bytes.
const JPEG_QUALITY: u8 = 85;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a JPEG, PNG, WebP or GIF image we can read: {0}")]
    Unreadable(String),
    #[error("image too large to decode safely")]
    TooLarge,
    #[error("could not encode the image as JPEG: {0}")]
    Encode(String),
}

#[derive(Debug, Clone)]
pub struct PreparedImage {
    pub data_url: String,
    pub width: u32,
    pub height: u32,
}

/// A photo as a `data:image/jpeg;base64,...` URL whose longer side is at most `max_side` pixels. CPU-bound: callers run it on a blocking thread.
pub fn to_data_url(bytes: &[u8], max_side: u32) -> Result<PreparedImage, ImageError> {
    let max_side = max_side.max(1);
    // The content says what it is; a file name or MIME type from the sender may lie.
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(unreadable)?;
    let format = reader.format();
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE_PIXELS);
    limits.max_image_height = Some(MAX_SIDE_PIXELS);
    limits.max_alloc = Some(MAX_ALLOC_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(from_image)?;
    // `into_decoder` checks the sides but not the buffer the decode will
    // allocate: 12,000 by 12,000 RGBA pixels is over half a gigabyte.
    if decoder.total_bytes() > MAX_ALLOC_BYTES {
        return Err(ImageError::TooLarge);
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let (width, height) = upright(decoder.dimensions(), orientation);

    if format == Some(ImageFormat::Jpeg) && width.max(height) <= max_side {
        // Already what the model wants: re-encoding would only lose quality.
        return Ok(PreparedImage { data_url: data_url(bytes), width, height });
    }

    let mut image = DynamicImage::from_decoder(decoder).map_err(from_image)?;
    // Re-encoding drops the EXIF tag that told viewers to rotate the photo.
    image.apply_orientation(orientation);
    if image.width().max(image.height()) > max_side {
        image = image.resize(max_side, max_side, FilterType::Triangle);
    }
    let rgb = flatten_on_white(image);
    let mut jpeg = Vec::new();
    rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY))
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(PreparedImage { data_url: data_url(&jpeg), width: rgb.width(), height: rgb.height() })
}

/// The sides as the photo is meant to be seen.
fn upright((width, height): (u32, u32), orientation: Orientation) -> (u32, u32) {
    use Orientation::{Rotate270, Rotate270FlipH, Rotate90, Rotate90FlipH};
    if matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH) {
        (height, width)
    } else {
        (width, height)
    }
}

/// JPEG has no transparency, and dropping alpha as is turns transparent
/// areas (often stored black) into black: a sticker or screenshot would
/// come out unreadable.
fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a)) + 127) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn data_url(jpeg: &[u8]) -> String {
    format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(jpeg))
}

fn from_image(error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Limits(_) => ImageError::TooLarge,
        other => unreadable(other),
    }
}

fn unreadable(error: impl std::fmt::Display) -> ImageError {
    ImageError::Unreadable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba, RgbaImage};

    fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    fn decoded(prepared: &PreparedImage) -> (Vec<u8>, DynamicImage) {
        let base64 = prepared.data_url.strip_prefix("data:image/jpeg;base64,").expect("a JPEG data URL");
        let bytes = base64::engine::general_purpose::STANDARD.decode(base64).unwrap();
        let image = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).unwrap();
        (bytes, image)
    }

    #[test]
    fn a_large_png_is_scaled_down_to_a_jpeg() {
        let png = encoded(
            &DynamicImage::ImageRgb8(RgbImage::from_fn(3000, 1000, |x, _| Rgb([(x % 256) as u8, 80, 160]))),
            ImageFormat::Png,
        );

        let prepared = to_data_url(&png, 1568).unwrap();

        assert_eq!(prepared.width, 1568);
        assert!((522..=524).contains(&prepared.height), "{}", prepared.height);
        let (_, image) = decoded(&prepared);
        assert_eq!((image.width(), image.height()), (prepared.width, prepared.height));
    }

    #[test]
    fn a_small_jpeg_passes_through_untouched() {
        let jpeg =
            encoded(&DynamicImage::ImageRgb8(RgbImage::from_pixel(120, 80, Rgb([10, 200, 30]))), ImageFormat::Jpeg);

        let prepared = to_data_url(&jpeg, 1568).unwrap();

        assert_eq!((prepared.width, prepared.height), (120, 80));
        assert_eq!(decoded(&prepared).0, jpeg);
    }

    #[test]
    fn transparency_becomes_white() {
        let png = encoded(&DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([0, 0, 0, 0]))), ImageFormat::Png);

        let prepared = to_data_url(&png, 1568).unwrap();

        let pixel = decoded(&prepared).1.to_rgb8().get_pixel(1, 1).0;
        assert!(pixel.iter().all(|&c| c > 245), "{pixel:?}");
    }

    #[test]
    fn garbage_is_not_an_image() {
        let error = to_data_url(b"this is a pdf, honestly", 1568).unwrap_err();
        assert!(matches!(error, ImageError::Unreadable(_)), "{error:?}");
    }

    #[test]
    fn a_header_claiming_huge_sides_is_refused_before_decoding() {
        let error = to_data_url(&png_header(100_000, 100_000), 1568).unwrap_err();
        assert!(matches!(error, ImageError::TooLarge), "{error:?}");
    }

    #[test]
    fn sides_within_limits_but_too_many_pixels_are_refused() {
        let error = to_data_url(&png_header(12_000, 12_000), 1568).unwrap_err();
        assert!(matches!(error, ImageError::TooLarge), "{error:?}");
    }

    /// A PNG that is nothing but its signature, a valid IHDR chunk (8-bit
    /// RGBA) and an empty IDAT: all a decoder reads before it sizes its
    /// buffers.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 6, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", &[])] {
            let chunk = [kind.as_slice(), data].concat();
            png.extend((data.len() as u32).to_be_bytes());
            png.extend(&chunk);
            png.extend(crc32(&chunk).to_be_bytes());
        }
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
