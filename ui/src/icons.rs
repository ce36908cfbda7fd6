//! The tray icons: PNGs exported from `assets/icons/svg/` (by `assets/icons/export`), built into
//! the binary so that an installed agent needs no asset files, and decoded to the RGBA pixels the
//! tray takes.

use crate::tray_state::TrayState;

/// The size built in: panels show 16–24 px, and 32 stays sharp on a 2× screen.
pub const SIZE: u32 = 32;

macro_rules! png {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../assets/icons/png/32/",
            $name,
            ".png"
        ))
    };
}

/// The PNG bytes of a state's icon.
pub fn png(state: TrayState) -> &'static [u8] {
    match state {
        TrayState::Conflicts => png!("conflicts"),
        TrayState::Error => png!("error"),
        TrayState::Offline => png!("offline"),
        TrayState::Syncing => png!("syncing"),
        TrayState::Paused => png!("paused"),
        TrayState::Synced => png!("synced"),
    }
}

/// Decoded pixels: RGBA, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub rgba: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Decodes a PNG to 8-bit RGBA (what `tray_icon::Icon::from_rgba` takes).
pub fn decode(png: &[u8]) -> Result<Pixels, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8() | png::Transformations::ALPHA);
    let mut reader = decoder.read_info().map_err(|e| format!("icon PNG: {e}"))?;
    let size = reader.output_buffer_size().ok_or("icon PNG: too large")?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("icon PNG: {e}"))?;
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return Err(format!(
            "icon PNG: {:?}/{:?} is not 8-bit RGBA",
            info.color_type, info.bit_depth
        ));
    }
    buf.truncate(info.buffer_size());
    Ok(Pixels {
        rgba: buf,
        width: info.width,
        height: info.height,
    })
}

/// The decoded icon of a state.
pub fn pixels(state: TrayState) -> Result<Pixels, String> {
    decode(png(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TrayState; 6] = [
        TrayState::Conflicts,
        TrayState::Error,
        TrayState::Offline,
        TrayState::Syncing,
        TrayState::Paused,
        TrayState::Synced,
    ];

    /// The badge's colour at its centre (the badge sits bottom right, centred at 47/64).
    fn badge(p: &Pixels) -> [u8; 4] {
        let (x, y) = (p.width * 47 / 64 - 3, p.height * 47 / 64 - 3);
        let i = ((y * p.width + x) * 4) as usize;
        p.rgba[i..i + 4].try_into().unwrap()
    }

    #[test]
    fn every_state_has_a_distinct_icon_of_the_built_in_size() {
        let mut seen = Vec::new();
        for state in ALL {
            let p = pixels(state).unwrap_or_else(|e| panic!("{state:?}: {e}"));
            assert_eq!((p.width, p.height), (SIZE, SIZE), "{state:?}");
            assert_eq!(p.rgba.len(), (SIZE * SIZE * 4) as usize);
            assert_eq!(p.rgba[3], 0, "{state:?}: the corner is transparent");
            assert!(!seen.contains(&p.rgba), "{state:?} looks like another state");
            seen.push(p.rgba);
        }
    }

    #[test]
    fn the_badge_colour_tells_the_state() {
        let red = badge(&pixels(TrayState::Error).unwrap());
        assert!(red[0] > 180 && red[1] < 80, "error is red: {red:?}");
        let green = badge(&pixels(TrayState::Synced).unwrap());
        assert!(green[1] > 120 && green[0] < 60, "synced is green: {green:?}");
        let amber = badge(&pixels(TrayState::Conflicts).unwrap());
        assert!(
            amber[0] > 180 && amber[1] > 90 && amber[2] < 40,
            "conflicts are amber: {amber:?}"
        );
    }

    #[test]
    fn a_broken_png_is_an_error_not_a_panic() {
        assert!(decode(b"not a png").is_err());
        assert!(decode(&png(TrayState::Synced)[..100]).is_err());
    }
}
