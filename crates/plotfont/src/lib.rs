//! The bundled DejaVu Sans font, registered with plotters' `ab_glyph` text
//! backend under the family `"sans-serif"`.
//!
//! Why a crate of its own: cargo unifies features across a workspace build,
//! so once bftbench turns on plotters' `ab_glyph` (to draw without system
//! fontconfig), criterion's plots in every bench binary render text through
//! it too and fail with `FontUnavailable` unless the font is registered. Each
//! bench calls [`register`] before criterion runs, and bftbench calls it
//! before plotting.

use plotters::style::FontStyle;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the font for normal and bold text; idempotent.
pub fn register() {
    REGISTER.call_once(|| {
        for style in [
            FontStyle::Normal,
            FontStyle::Bold,
            FontStyle::Oblique,
            FontStyle::Italic,
        ] {
            // The bundled file is a valid TrueType font; a failure would only
            // lose text, so it is not fatal.
            let _ = plotters::style::register_font("sans-serif", style, FONT);
        }
    });
}
