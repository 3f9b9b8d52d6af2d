//! Simulated cars: a driving profile per car (city, highway, reckless) and the random walk
//! that produces its next driving event and status record, plus the garbage generator.
//! Speeds revert to the profile's target with noise, so reckless cars (and some highway
//! cars, some of the time) average above 80 km/h over 30 s while city cars never do.

use std::fmt::Write as _;

use rand::Rng;
use rand::rngs::StdRng;

/// A car's driving style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Target ≈ 35 km/h.
    City,
    /// Target ≈ 78 km/h: sometimes above 80 over a window, sometimes not.
    Highway,
    /// Target ≈ 115 km/h.
    Reckless,
}

impl Profile {
    fn target(self) -> f64 {
        match self {
            Profile::City => 35.0,
            Profile::Highway => 78.0,
            Profile::Reckless => 115.0,
        }
    }
}

/// One simulated car.
#[derive(Debug, Clone)]
pub struct Car {
    /// Car number, e.g. `V0042`.
    pub number: String,
    /// Its profile.
    pub profile: Profile,
    speed: f64,
    area: String,
}

/// The car number of car `i` (0-based): letter `A + i / 10000`, then `i % 10000`.
pub fn car_number(i: u32) -> String {
    let letter = char::from(b'A' + (i / 10_000) as u8);
    format!("{letter}{:04}", i % 10_000)
}

impl Car {
    /// Car `i` with a profile drawn from `rng` (70 % city, 20 % highway, 10 % reckless).
    pub fn new(i: u32, rng: &mut StdRng) -> Car {
        let p = rng.random_range(0..100);
        let profile = match p {
            0..70 => Profile::City,
            70..90 => Profile::Highway,
            _ => Profile::Reckless,
        };
        let speed = profile.target() + rng.random_range(-10.0..10.0);
        let area = format!(
            "{}{:02}",
            char::from(b'A' + rng.random_range(0..26u8)),
            rng.random_range(0..100)
        );
        Car {
            number: car_number(i),
            profile,
            speed: speed.max(0.0),
            area,
        }
    }

    /// Appends this car's next driving event at `time` (14 digits) to `out`, with a newline.
    pub fn driving_line(&mut self, time: &str, rng: &mut StdRng, out: &mut String) {
        let before = self.speed;
        let pull = (self.profile.target() - self.speed) * 0.15;
        self.speed = (self.speed + pull + rng.random_range(-6.0..6.0)).clamp(0.0, 300.0);
        let delta = self.speed - before;
        let accel = if delta > 0.0 {
            (delta * 1.5).min(9.0) as u8
        } else {
            0
        };
        let brake = if delta < 0.0 {
            (-delta * 1.5).min(9.0) as u8
        } else {
            0
        };
        let steering: i16 = match rng.random_range(0..10) {
            0 => rng.random_range(-540..=540),
            _ => rng.random_range(-15..=15),
        };
        let signal = match steering {
            s if s < -90 => 'L',
            s if s > 90 => 'R',
            _ => 'N',
        };
        if rng.random_range(0..3600) == 0 {
            self.area = format!(
                "{}{:02}",
                char::from(b'A' + rng.random_range(0..26u8)),
                rng.random_range(0..100)
            );
        }
        let _ = writeln!(
            out,
            "{time},{},{accel},{brake},{steering},{signal},{},{}",
            self.number,
            self.speed.round() as u16,
            self.area
        );
    }

    /// Appends this car's status record at `time` to `out`, with a newline.
    pub fn status_line(&self, time: &str, rng: &mut StdRng, out: &mut String) {
        let _ = write!(out, "{time},{}", self.number);
        for _ in 0..4 {
            let _ = write!(out, ",{}", rng.random_range(28..=36));
        }
        for _ in 0..4 {
            let _ = write!(out, ",{}", u8::from(rng.random_range(0..200) != 0));
        }
        for _ in 0..3 {
            let code = if rng.random_range(0..100) == 0 {
                rng.random_range(1..10)
            } else {
                0
            };
            let _ = write!(out, ",{code}");
        }
        out.push('\n');
    }
}

/// Replaces the last line in `out` (a valid driving event) with a malformed variant:
/// truncated, wrong field count, non-numeric speed, or an impossible date.
pub fn garble_last_line(out: &mut String, rng: &mut StdRng) {
    let start = out[..out.len() - 1].rfind('\n').map_or(0, |i| i + 1);
    let line: String = out[start..out.len() - 1].to_owned();
    out.truncate(start);
    let fields: Vec<&str> = line.split(',').collect();
    let bad = match rng.random_range(0..4) {
        0 => line[..rng.random_range(1..line.len() / 2)].to_owned(),
        1 => format!("{line},EXTRA"),
        2 => {
            let mut f = fields.clone();
            f[6] = "fast";
            f.join(",")
        }
        _ => {
            let mut f = fields.clone();
            let t = format!("{}1399{}", &f[0][..4], &f[0][8..]);
            f[0] = &t;
            f.join(",")
        }
    };
    out.push_str(&bad);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::event::{parse_driving, parse_status};

    #[test]
    fn lines_are_valid_and_garbage_is_not() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut cars: Vec<Car> = (0..50).map(|i| Car::new(i, &mut rng)).collect();
        for c in &mut cars {
            let mut s = String::new();
            c.driving_line("20261122143015", &mut rng, &mut s);
            parse_driving(s.trim_end()).unwrap();
            let mut st = String::new();
            c.status_line("20261122143015", &mut rng, &mut st);
            parse_status(st.trim_end()).unwrap();
            garble_last_line(&mut s, &mut rng);
            assert!(parse_driving(s.trim_end()).is_err(), "{s}");
        }
        assert_eq!(car_number(0), "A0000");
        assert_eq!(car_number(100_042), "K0042");
    }

    #[test]
    fn profiles_separate_around_80() {
        let mut rng = StdRng::seed_from_u64(2);
        let avg = |profile: Profile, rng: &mut StdRng| {
            let mut c = Car::new(0, rng);
            c.profile = profile;
            let mut s = String::new();
            let mut sum = 0.0;
            for _ in 0..300 {
                c.driving_line("20261122143015", rng, &mut s);
                sum += c.speed;
            }
            sum / 300.0
        };
        assert!(avg(Profile::City, &mut rng) < 60.0);
        assert!(avg(Profile::Reckless, &mut rng) > 95.0);
    }
}
