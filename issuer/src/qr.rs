//! QR codes of enrollment bundles, the one renderer of the issuer: for a terminal (Unicode
//! half blocks), PNG and SVG (a file for `enroll-guest --qr-svg`, an inline element for the
//! admin web's one-time bundle page).
//!
//! The QR text is the compact JSON bundle the guest parses (`latchkey-guest enroll
//! --qr-image` / `--text`); error correction level M. Every rendering holds the guest's
//! secret key, so it is wiped when dropped and written to files mode 0600 only.

use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::error::IssuerdError;

/// Modules of light margin around the code (the QR specification's quiet zone).
pub const QUIET_ZONE: usize = 4;
/// Pixels per module in a PNG.
pub const PNG_MODULE_PX: usize = 8;

/// The modules of `text`'s QR code, with the quiet zone: `true` is dark.
struct Modules {
    size: usize,
    dark: Zeroizing<Vec<bool>>,
}

impl Modules {
    fn new(text: &str) -> Result<Self, IssuerdError> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .map_err(|e| IssuerdError::Qr(format!("{e} ({} bytes of text)", text.len())))?;
        let inner = code.width();
        let size = inner + 2 * QUIET_ZONE;
        let mut dark = Zeroizing::new(vec![false; size * size]);
        for (i, c) in code.to_colors().iter().enumerate() {
            if *c == Color::Dark {
                let (x, y) = (i % inner, i / inner);
                dark[(y + QUIET_ZONE) * size + x + QUIET_ZONE] = true;
            }
        }
        Ok(Self { size, dark })
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.size && y < self.size && self.dark[y * self.size + x]
    }
}

/// The code as lines of Unicode half blocks, two module rows per line, for a terminal with
/// a dark background: light modules (and the quiet zone) are drawn in the foreground
/// colour, dark ones are left blank. Ends with a newline.
pub fn terminal(text: &str) -> Result<Zeroizing<String>, IssuerdError> {
    let m = Modules::new(text)?;
    let mut out = Zeroizing::new(String::with_capacity((m.size + 1) * m.size.div_ceil(2) * 3));
    for y in (0..m.size).step_by(2) {
        for x in 0..m.size {
            // Rows past the bottom are part of the (light) margin.
            let top_light = !m.is_dark(x, y);
            let bottom_light = y + 1 >= m.size || !m.is_dark(x, y + 1);
            out.push(match (top_light, bottom_light) {
                (true, true) => '\u{2588}',
                (true, false) => '\u{2580}',
                (false, true) => '\u{2584}',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    Ok(out)
}

/// The code as an 8-bit greyscale PNG, [`PNG_MODULE_PX`] pixels per module.
pub fn png(text: &str) -> Result<Zeroizing<Vec<u8>>, IssuerdError> {
    let m = Modules::new(text)?;
    let side = m.size * PNG_MODULE_PX;
    let side_u32 = u32::try_from(side).map_err(|_| IssuerdError::Qr("image too large".into()))?;
    let mut pixels = Zeroizing::new(vec![255u8; side * side]);
    for y in 0..side {
        for x in 0..side {
            if m.is_dark(x / PNG_MODULE_PX, y / PNG_MODULE_PX) {
                pixels[y * side + x] = 0;
            }
        }
    }
    let mut out = Zeroizing::new(Vec::new());
    {
        let mut enc = png::Encoder::new(&mut *out, side_u32, side_u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| IssuerdError::Qr(format!("PNG encoding: {e}")))?;
        w.write_image_data(&pixels)
            .and_then(|()| w.finish())
            .map_err(|e| IssuerdError::Qr(format!("PNG encoding: {e}")))?;
    }
    Ok(out)
}

/// The dark modules as one SVG path: a `M x y h n v1 h-n z` rectangle per horizontal run.
fn svg_path(m: &Modules) -> Zeroizing<String> {
    let mut path = Zeroizing::new(String::new());
    for y in 0..m.size {
        let mut x = 0;
        while x < m.size {
            if !m.is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < m.size && m.is_dark(x, y) {
                x += 1;
            }
            let run = x - start;
            path.push_str(&format!("M{start} {y}h{run}v1h-{run}z"));
        }
    }
    path
}

/// The `<svg>` element (black on white, the quiet zone included), with `attributes` on it.
fn svg_tag(m: &Modules, attributes: &str) -> Zeroizing<String> {
    let path = svg_path(m);
    let mut out = Zeroizing::new(String::with_capacity(path.len() + 400));
    out.push_str(&format!(
        "<svg {attributes} xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {s} {s}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{s}\" height=\"{s}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"",
        s = m.size,
    ));
    out.push_str(&path);
    out.push_str("\"/></svg>");
    out
}

/// The code as an SVG document.
pub fn svg(text: &str) -> Result<Zeroizing<String>, IssuerdError> {
    let m = Modules::new(text)?;
    let px = m.size * PNG_MODULE_PX;
    let tag = svg_tag(
        &m,
        &format!("version=\"1.1\" width=\"{px}\" height=\"{px}\""),
    );
    let mut out = Zeroizing::new(String::with_capacity(tag.len() + 120));
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- Latchkey enrollment (secret: do not share) -->\n");
    out.push_str(&tag);
    out.push('\n');
    Ok(out)
}

/// The code as an inline `<svg class="qr" role="img">` element for an HTML page, labelled
/// `label` (escaped). No script and no style attribute: it passes the admin web's CSP.
pub fn svg_element(text: &str, label: &str) -> Result<Zeroizing<String>, IssuerdError> {
    let m = Modules::new(text)?;
    let label: String = label
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    Ok(svg_tag(
        &m,
        &format!("class=\"qr\" role=\"img\" aria-label=\"{label}\""),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"latchkey_enrollment":1,"guest_id":"00112233445566778899aabbccddeeff","enrollment_key":"0000000000000000000000000000000000000000000000000000000000000000","broker_url":"mqtt://127.0.0.1:1883","locks":["ffeeddccbbaa99887766554433221100"],"company_id":65535}"#;

    /// Decodes a greyscale bitmap (`true` = dark) with rqrr.
    fn decode(width: usize, height: usize, dark: impl Fn(usize, usize) -> bool) -> String {
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            if dark(x, y) { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_terminal_rendering_decodes_to_the_text() {
        let t = terminal(TEXT).unwrap();
        let lines: Vec<Vec<char>> = t.lines().map(|l| l.chars().collect()).collect();
        let width = lines[0].len();
        assert!(lines.iter().all(|l| l.len() == width));
        assert!(
            t.chars()
                .all(|c| matches!(c, '\u{2588}' | '\u{2580}' | '\u{2584}' | ' ' | '\n'))
        );
        // Each character is two module rows; scale up 4x for the detector.
        let scale = 4;
        let got = decode(width * scale, lines.len() * 2 * scale, |x, y| {
            let (col, row) = (x / scale, y / scale);
            let c = lines[row / 2][col];
            let light = match c {
                '\u{2588}' => true,
                '\u{2580}' => row % 2 == 0,
                '\u{2584}' => row % 2 == 1,
                _ => false,
            };
            !light
        });
        assert_eq!(got, TEXT);
    }

    #[test]
    fn the_png_decodes_to_the_text() {
        let bytes = png(TEXT).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let (w, h) = (info.width as usize, info.height as usize);
        assert_eq!(w % PNG_MODULE_PX, 0);
        assert_eq!(decode(w, h, |x, y| buf[y * w + x] < 128), TEXT);
    }

    /// Rebuilds the bitmap from an SVG's runs and decodes it.
    fn decode_svg(svg: &str) -> (usize, String) {
        let view = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
        let size: usize = view.split(' ').next().unwrap().parse().unwrap();
        let mut grid = vec![false; size * size];
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for cell in d.split('M').filter(|c| !c.is_empty()) {
            let (xy, rest) = cell.split_once('h').unwrap();
            let run: usize = rest.split('v').next().unwrap().parse().unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            for dx in 0..run {
                assert!(!grid[y * size + x + dx], "each module drawn once");
                grid[y * size + x + dx] = true;
            }
        }
        let scale = 4;
        (
            grid.iter().filter(|d| **d).count(),
            decode(size * scale, size * scale, |x, y| {
                grid[(y / scale) * size + x / scale]
            }),
        )
    }

    #[test]
    fn the_svg_document_draws_every_dark_module_once() {
        let s = svg(TEXT).unwrap();
        assert!(s.starts_with("<?xml") && s.trim_end().ends_with("</svg>"));
        let m = Modules::new(TEXT).unwrap();
        let (dark, got) = decode_svg(&s);
        assert_eq!(dark, m.dark.iter().filter(|d| **d).count());
        assert_eq!(got, TEXT);
    }

    #[test]
    fn the_inline_svg_is_labelled_escaped_and_without_style() {
        let s = svg_element(TEXT, "Enroll <\"Zoë\">").unwrap();
        assert!(
            s.starts_with("<svg class=\"qr\"") && s.ends_with("</svg>"),
            "{}",
            s.as_str()
        );
        assert!(s.contains("class=\"qr\" role=\"img\""));
        assert!(s.contains("aria-label=\"Enroll &lt;&quot;Zoë&quot;&gt;\""));
        assert!(!s.contains("style"), "no inline style (CSP)");
        assert_eq!(decode_svg(&s).1, TEXT);
    }

    #[test]
    fn text_too_long_for_a_qr_code_is_an_error() {
        let e = terminal(&"x".repeat(4000)).unwrap_err();
        assert!(matches!(e, IssuerdError::Qr(_)), "{e:?}");
    }
}
