//! STIX timestamps: `YYYY-MM-DDTHH:MM:SS.mmmZ`, always with milliseconds
//! (the 2.1 schema's `created`/`modified` regex wants at least three digits),
//! written without allocating since every exported object has several.

use serde::{Serialize, Serializer};
use std::fmt;

/// Earliest time a four-digit STIX year can say: 0000-01-01T00:00:00.000Z.
const MIN_MILLIS: i64 = -62_167_219_200_000;
/// Latest: 9999-12-31T23:59:59.999Z; later times (a "never" valid_until) are written as this.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// A point in time, unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From unix seconds.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// The next representable time: how a later version of an object gets a
    /// `modified` strictly after the one before when both fall in the same second.
    pub fn next(self) -> Self {
        Timestamp(self.0.saturating_add(1))
    }

    /// The text, in a stack buffer.
    fn encode(self, buf: &mut [u8; 24]) -> &str {
        let millis = self.0.clamp(MIN_MILLIS, MAX_MILLIS);
        let secs = millis.div_euclid(1000);
        let ms = millis.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let fields = [
            (0, 4, year),
            (5, 2, month),
            (8, 2, day),
            (11, 2, of_day / 3600),
            (14, 2, of_day / 60 % 60),
            (17, 2, of_day % 60),
            (20, 3, ms),
        ];
        *buf = *b"0000-00-00T00:00:00.000Z";
        for (start, width, mut value) in fields {
            for i in (start..start + width).rev() {
                buf[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        std::str::from_utf8(buf).expect("ascii digits")
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode(&mut [0; 24]))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.encode(&mut [0; 24]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    #[test]
    fn timestamps_have_milliseconds_and_a_z() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_secs(1_714_521_600).to_string(), "2024-05-01T00:00:00.000Z");
        assert_eq!(Timestamp(951_782_400_123).to_string(), "2000-02-29T00:00:00.123Z");
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_secs(i64::MAX).to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_secs(i64::MIN).to_string(), "0000-01-01T00:00:00.000Z");
    }

    proptest! {
        #[test]
        fn timestamps_parse_back_as_rfc3339_to_the_same_millisecond(millis in MIN_MILLIS / 1000 * 1000..MAX_MILLIS) {
            let text = Timestamp(millis).to_string();
            let parsed = OffsetDateTime::parse(&text, &Rfc3339).unwrap();
            prop_assert_eq!((parsed.unix_timestamp_nanos() / 1_000_000) as i64, millis);
        }
    }
}
