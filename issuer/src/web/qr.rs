//! The enrollment bundle as a QR code, drawn as inline SVG (one path of dark runs; no
//! script, no style attribute, so the CSP holds).

use std::fmt::Write;

use maud::Markup;
use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the code (the standard's quiet zone).
const QUIET_ZONE: usize = 4;

/// The QR code of `text` as an `<svg>` element, or why it cannot be drawn (too long).
pub fn qr_svg(text: &str, label: &str) -> Result<Markup, String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L))
        .map_err(|e| format!("the bundle does not fit in a QR code ({e}); use the text below"))?;
    let width = code.width();
    let modules: Vec<bool> = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (y, row) in modules.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if !row[x] {
                x += 1;
                continue;
            }
            let start = x;
            while x < width && row[x] {
                x += 1;
            }
            let run = x - start;
            // Writing to a String cannot fail.
            let _ = write!(
                path,
                "M{} {}h{run}v1h-{run}z",
                start + QUIET_ZONE,
                y + QUIET_ZONE
            );
        }
    }
    let svg = maud::html! {
        svg.qr xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {size} {size}"))
            role="img" aria-label=(label) shape-rendering="crispEdges" {
            rect width=(size) height=(size) fill="#fff" {}
            path d=(path) fill="#000" {}
        }
    };
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_becomes_an_svg_with_a_quiet_zone() -> Result<(), String> {
        let svg = qr_svg(r#"{"latchkey_enrollment":1}"#, "bundle")?.into_string();
        assert!(svg.starts_with("<svg class=\"qr\""), "{svg}");
        // Version 2 (25 modules) for this size at level M, plus 2 × 4 quiet modules.
        assert!(svg.contains("viewBox=\"0 0 33 33\""), "{svg}");
        assert!(
            svg.contains("<path d=\"M4 4h7v1h-7z"),
            "finder pattern's top row: {svg}"
        );
        assert!(!svg.contains("style"), "no inline style (CSP)");
        Ok(())
    }

    #[test]
    fn text_too_long_for_any_qr_code_is_reported() {
        let huge = "x".repeat(8000);
        assert!(qr_svg(&huge, "bundle").is_err());
    }
}
