//! Class colours: hues spaced by the golden angle, so that classes with nearby ids get distinct
//! colours, with lightness cycling through three steps to separate more classes.

use plotters::style::{Color, HSLColor};

/// The golden angle as a fraction of a turn.
const GOLDEN_TURN: f64 = 0.381_966_011_250_105_1;

/// The colour of class number `i` (0-based, in any order the caller keeps).
pub fn class_colour(i: usize) -> [u8; 3] {
    let hue = (i as f64 * GOLDEN_TURN).fract();
    let lightness = [0.45, 0.6, 0.35][(i / 7) % 3];
    let (r, g, b) = HSLColor(hue, 0.75, lightness).to_backend_color().rgb;
    [r, g, b]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_class_is_red_and_neighbours_differ() {
        let first = class_colour(0);
        assert!(
            first[0] > 150 && first[1] < 60 && first[2] < 60,
            "{first:?}"
        );
        for i in 0..200 {
            let (a, b) = (class_colour(i), class_colour(i + 1));
            let gap: u32 = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y) as u32).sum();
            assert!(
                gap > 60,
                "classes {i} and {} look alike: {a:?} {b:?}",
                i + 1
            );
        }
    }
}
