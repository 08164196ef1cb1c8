//! `$bucketAuto`'s `granularity`: rounding bucket boundaries to a preferred-number series
//! (Renard R5..R80, E6..E192, 1-2-5) or to powers of two. Each series is its mantissas for one
//! decade, as integers over `scale`, repeated in every power of ten.

use crate::agg::expr::err;
use crate::error::Result;

pub struct Series {
    mantissas: &'static [u32],
    /// The mantissas are this many times the values of the decade starting at 1.
    scale: u32,
}

#[derive(Clone, Copy)]
pub enum Granularity {
    Series(&'static Series),
    PowersOf2,
}

static R5: Series = Series { mantissas: &[100, 160, 250, 400, 630], scale: 100 };
static R10: Series = Series { mantissas: &[100, 125, 160, 200, 250, 315, 400, 500, 630, 800], scale: 100 };
static R20: Series = Series {
    mantissas: &[
        100, 112, 125, 140, 160, 180, 200, 224, 250, 280, 315, 355, 400, 450, 500, 560, 630, 710, 800, 900,
    ],
    scale: 100,
};
static R40: Series = Series {
    mantissas: &[
        100, 106, 112, 118, 125, 132, 140, 150, 160, 170, 180, 190, 200, 212, 224, 236, 250, 265, 280, 300,
        315, 335, 355, 375, 400, 425, 450, 475, 500, 530, 560, 600, 630, 670, 710, 750, 800, 850, 900, 950,
    ],
    scale: 100,
};
static R80: Series = Series {
    mantissas: &[
        100, 103, 106, 109, 112, 115, 118, 122, 125, 128, 132, 136, 140, 145, 150, 155, 160, 165, 170, 175,
        180, 185, 190, 195, 200, 206, 212, 218, 224, 230, 236, 243, 250, 258, 265, 272, 280, 290, 300, 307,
        315, 325, 335, 345, 355, 365, 375, 387, 400, 412, 425, 437, 450, 462, 475, 487, 500, 515, 530, 545,
        560, 580, 600, 615, 630, 650, 670, 690, 710, 730, 750, 775, 800, 825, 850, 875, 900, 925, 950, 975,
    ],
    scale: 100,
};
static ONE_TWO_FIVE: Series = Series { mantissas: &[10, 20, 50], scale: 10 };
static E6: Series = Series { mantissas: &[10, 15, 22, 33, 47, 68], scale: 10 };
static E12: Series = Series { mantissas: &[10, 12, 15, 18, 22, 27, 33, 39, 47, 56, 68, 82], scale: 10 };
static E24: Series = Series {
    mantissas: &[
        10, 11, 12, 13, 15, 16, 18, 20, 22, 24, 27, 30, 33, 36, 39, 43, 47, 51, 56, 62, 68, 75, 82, 91,
    ],
    scale: 10,
};
static E48: Series = Series {
    mantissas: &[
        100, 105, 110, 115, 121, 127, 133, 140, 147, 154, 162, 169, 178, 187, 196, 205, 215, 226, 237, 249,
        261, 274, 287, 301, 316, 332, 348, 365, 383, 402, 422, 442, 464, 487, 511, 536, 562, 590, 619, 649,
        681, 715, 750, 787, 825, 866, 909, 953,
    ],
    scale: 100,
};
static E96: Series = Series {
    mantissas: &[
        100, 102, 105, 107, 110, 113, 115, 118, 121, 124, 127, 130, 133, 137, 140, 143, 147, 150, 154, 158,
        162, 165, 169, 174, 178, 182, 187, 191, 196, 200, 205, 210, 215, 221, 226, 232, 237, 243, 249, 255,
        261, 267, 274, 280, 287, 294, 301, 309, 316, 324, 332, 340, 348, 357, 365, 374, 383, 392, 402, 412,
        422, 432, 442, 453, 464, 475, 487, 499, 511, 523, 536, 549, 562, 576, 590, 604, 619, 634, 649, 665,
        681, 698, 715, 732, 750, 768, 787, 806, 825, 845, 866, 887, 909, 931, 953, 976,
    ],
    scale: 100,
};
static E192: Series = Series {
    mantissas: &[
        100, 101, 102, 104, 105, 106, 107, 109, 110, 111, 113, 114, 115, 117, 118, 120, 121, 123, 124, 126,
        127, 129, 130, 132, 133, 135, 137, 138, 140, 142, 143, 145, 147, 149, 150, 152, 154, 156, 158, 160,
        162, 164, 165, 167, 169, 172, 174, 176, 178, 180, 182, 184, 187, 189, 191, 193, 196, 198, 200, 203,
        205, 208, 210, 213, 215, 218, 221, 223, 226, 229, 232, 234, 237, 240, 243, 246, 249, 252, 255, 258,
        261, 264, 267, 271, 274, 277, 280, 284, 287, 291, 294, 298, 301, 305, 309, 312, 316, 320, 324, 328,
        332, 336, 340, 344, 348, 352, 357, 361, 365, 370, 374, 379, 383, 388, 392, 397, 402, 407, 412, 417,
        422, 427, 432, 437, 442, 448, 453, 459, 464, 470, 475, 481, 487, 493, 499, 505, 511, 517, 523, 530,
        536, 542, 549, 556, 562, 569, 576, 583, 590, 597, 604, 612, 619, 626, 634, 642, 649, 657, 665, 673,
        681, 690, 698, 706, 715, 723, 732, 741, 750, 759, 768, 777, 787, 796, 806, 816, 825, 835, 845, 856,
        866, 876, 887, 898, 909, 920, 931, 942, 953, 965, 976, 988,
    ],
    scale: 100,
};

impl Granularity {
    pub fn by_name(name: &str) -> Result<Granularity> {
        Ok(match name {
            "R5" => Granularity::Series(&R5),
            "R10" => Granularity::Series(&R10),
            "R20" => Granularity::Series(&R20),
            "R40" => Granularity::Series(&R40),
            "R80" => Granularity::Series(&R80),
            "1-2-5" => Granularity::Series(&ONE_TWO_FIVE),
            "E6" => Granularity::Series(&E6),
            "E12" => Granularity::Series(&E12),
            "E24" => Granularity::Series(&E24),
            "E48" => Granularity::Series(&E48),
            "E96" => Granularity::Series(&E96),
            "E192" => Granularity::Series(&E192),
            "POWERSOF2" => Granularity::PowersOf2,
            other => return Err(err(40257, format!("Unknown rounding granularity '{other}'"))),
        })
    }

    /// The smallest series value strictly greater than `x` (x >= 0).
    pub fn round_up(&self, x: f64) -> f64 {
        match self {
            Granularity::PowersOf2 => {
                if x < 1.0 {
                    // Below one the powers of two are the negative ones.
                    let mut p = 1.0;
                    while p / 2.0 > x && p > f64::MIN_POSITIVE {
                        p /= 2.0;
                    }
                    return p;
                }
                let p = 2f64.powi(x.log2().floor() as i32);
                if p > x {
                    p
                } else {
                    p * 2.0
                }
            }
            Granularity::Series(s) => {
                if x == 0.0 {
                    return s.value(0, x.log10().floor() as i32);
                }
                let e = x.log10().floor() as i32;
                for dec in [e - 1, e, e + 1] {
                    for i in 0..s.mantissas.len() {
                        let v = s.value(i, dec);
                        if v > x {
                            return v;
                        }
                    }
                }
                s.value(0, e + 2)
            }
        }
    }

    /// The largest series value strictly less than `x` (0 for 0).
    pub fn round_down(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        match self {
            Granularity::PowersOf2 => {
                let p = 2f64.powi(x.log2().floor() as i32);
                if p < x {
                    p
                } else {
                    p / 2.0
                }
            }
            Granularity::Series(s) => {
                let e = x.log10().floor() as i32;
                for dec in [e + 1, e, e - 1] {
                    for i in (0..s.mantissas.len()).rev() {
                        let v = s.value(i, dec);
                        if v < x {
                            return v;
                        }
                    }
                }
                s.value(s.mantissas.len() - 1, e - 2)
            }
        }
    }
}

impl Series {
    /// The `i`-th mantissa in the decade starting at 10^`dec`.
    fn value(&self, i: usize, dec: i32) -> f64 {
        let m = f64::from(self.mantissas.get(i).copied().unwrap_or(1));
        let digits = self.scale.ilog10() as i32;
        let exp = dec - digits;
        // Dividing by an exact power of ten gives the double nearest the decimal value.
        if exp >= 0 {
            m * 10f64.powi(exp)
        } else {
            m / 10f64.powi(-exp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        let r5 = Granularity::by_name("R5").unwrap();
        assert_eq!(r5.round_up(10.0), 16.0);
        assert_eq!(r5.round_up(17.0), 25.0);
        assert_eq!(r5.round_up(630.0), 1000.0);
        assert_eq!(r5.round_down(10.0), 6.3);
        assert_eq!(r5.round_down(0.2), 0.16);
        let p2 = Granularity::by_name("POWERSOF2").unwrap();
        assert_eq!(p2.round_up(4.0), 8.0);
        assert_eq!(p2.round_up(5.0), 8.0);
        assert_eq!(p2.round_down(5.0), 4.0);
        assert_eq!(p2.round_down(4.0), 2.0);
        let e12 = Granularity::by_name("1-2-5").unwrap();
        assert_eq!(e12.round_up(21.0), 50.0);
        assert_eq!(e12.round_down(21.0), 20.0);
        assert!(Granularity::by_name("R7").is_err());
    }
}
