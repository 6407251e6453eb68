//! Text in the project's PNG figures: the TrueType font, and a drawing
//! backend that places glyphs where the font says.
//!
//! plotters 0.3.7 (`ab_glyph` feature) draws each glyph's pixels from its
//! outline's left edge but ignores the glyph's left side bearing, so narrow
//! glyphs with a wide bearing ("1" in DejaVu Sans) sit too far left: "AU10"
//! reads "AU1 0" and a tick label "100" reads "1 00". [`TextFix`] wraps a
//! backend and rasterises text itself with ab_glyph, each glyph at its pen
//! position plus its bearing, with plotters' own advance, kerning and
//! vertical placement (so layout boxes computed by plotters still fit).
//! Every other drawing call goes to the wrapped backend unchanged.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

/// Font files tried after `$MCSFAU_FONT` (Debian's `fonts-dejavu-core`
/// first).
pub const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// The family name figures use.
pub const FAMILY: &str = "sans-serif";

static FONT: OnceLock<Result<FontRef<'static>, String>> = OnceLock::new();

/// Registers `$MCSFAU_FONT`, else the first of [`FONT_CANDIDATES`] that
/// parses, as plotters' [`FAMILY`] (once per process); the error lists the
/// files tried.
pub fn ensure_font() -> Result<(), String> {
    FONT.get_or_init(|| {
        let env = std::env::var("MCSFAU_FONT").ok();
        let mut tried = Vec::new();
        for path in env.iter().map(String::as_str).chain(FONT_CANDIDATES) {
            tried.push(path.to_string());
            let Ok(bytes) = std::fs::read(path) else { continue };
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            match (FontRef::try_from_slice(bytes), register_font(FAMILY, FontStyle::Normal, bytes)) {
                (Ok(font), Ok(())) => return Ok(font),
                _ => continue,
            }
        }
        Err(format!("no font found (tried {}); install fonts-dejavu-core or set MCSFAU_FONT", tried.join(", ")))
    })
    .as_ref()
    .map(|_| ())
    .map_err(Clone::clone)
}

/// A backend whose text is drawn with correct glyph bearings (module docs).
pub struct TextFix<B>(pub B);

impl<B: DrawingBackend> DrawingBackend for TextFix<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// plotters' default `draw_text` (anchor, transform, clipping), with
    /// the glyphs rasterised by [`glyph_pixels`].
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let font = match FONT.get() {
            Some(Ok(f)) if style.family().as_str() == FAMILY => f,
            _ => return self.0.draw_text(text, style, pos),
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) =
            style.layout_box(text).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        for (x, y, coverage) in glyph_pixels(font, style.size(), text) {
            let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let c = BackendColor { alpha: color.alpha * f64::from(coverage), rgb: color.rgb };
                self.0.draw_pixel((x, y), c)?;
            }
        }
        Ok(())
    }
}

/// The pixels `(x, y, coverage)` of `text` at `size`, laid out as plotters
/// lays it out (advance plus kerning, the same vertical placement), each
/// glyph shifted by its outline's left edge, which plotters leaves out.
pub fn glyph_pixels(font: &FontRef<'static>, size: f64, text: &str) -> Vec<(i32, i32, f32)> {
    let scaled = font.as_scaled(size as f32);
    let mut out = Vec::new();
    let mut pen = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        prev = Some(id);
        if let Some(outline) = scaled.outline_glyph(scaled.scaled_glyph(c)) {
            let rect = outline.px_bounds();
            let x0 = (pen + rect.min.x) as i32;
            let y0 = ((size as f32) / 2.0 + rect.min.y) as i32;
            outline.draw(|x, y, a| out.push((x0 + x as i32, y0 + y as i32, a)));
        }
        pen += scaled.h_advance(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gap plotters leaves in "10": the columns with ink, left to right.
    fn ink_columns(pixels: &[(i32, i32, f32)]) -> Vec<i32> {
        let mut cols: Vec<i32> = pixels.iter().filter(|p| p.2 > 0.5).map(|p| p.0).collect();
        cols.sort_unstable();
        cols.dedup();
        cols
    }

    #[test]
    fn digits_sit_at_their_advance_not_at_their_outline() {
        if ensure_font().is_err() {
            eprintln!("skipped: no font");
            return;
        }
        let Some(Ok(font)) = FONT.get() else { unreachable!() };
        let size = 40.0;
        let one = ink_columns(&glyph_pixels(font, size, "1"));
        let ten = ink_columns(&glyph_pixels(font, size, "10"));
        let zero_alone = ink_columns(&glyph_pixels(font, size, "0"));
        let scaled = font.as_scaled(size as f32);
        let advance = scaled.h_advance(scaled.glyph_id('1'));
        // The "0" of "10" starts one advance of "1" after where "0" alone starts.
        let zero_in_ten = ten.iter().copied().filter(|&x| x > *one.last().unwrap()).min().unwrap();
        let shift = zero_in_ten - zero_alone.first().unwrap();
        assert!((shift as f32 - advance).abs() <= 1.5, "0 moved by {shift}, advance of 1 is {advance}");
        // "1" starts at its bearing (DejaVu's "1" is centred in its advance), not at 0.
        assert!(*one.first().unwrap() as f32 >= 0.1 * advance, "{one:?}");
    }
}
