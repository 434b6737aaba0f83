//! Durations written the way people write them: "30s", "10m", "2h", "1d".

use serde::{Deserialize, Serialize};

/// A policy duration, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyDuration(pub u64);

impl PolicyDuration {
    /// As a `time::Duration`.
    pub fn as_duration(self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.0).unwrap_or(i64::MAX))
    }
}

impl core::fmt::Display for PolicyDuration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.0;
        if s != 0 && s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s != 0 && s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl core::str::FromStr for PolicyDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits.parse().map_err(|_| {
            format!("'{text}' is not a duration like \"30s\", \"10m\", \"2h\" or \"1d\"")
        })?;
        let scale = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            other => {
                return Err(format!(
                    "unknown unit '{other}' in '{text}': use s, m, h or d"
                ));
            }
        };
        n.checked_mul(scale)
            .map(Self)
            .ok_or_else(|| format!("'{text}' is too long a duration"))
    }
}

impl Serialize for PolicyDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PolicyDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Self(s)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, secs, shown) in [
            ("30s", 30, "30s"),
            ("10m", 600, "10m"),
            ("2h", 7200, "2h"),
            ("1d", 86400, "1d"),
            ("90", 90, "90s"),
        ] {
            let d: PolicyDuration = text.parse().unwrap();
            assert_eq!(d.0, secs);
            assert_eq!(d.to_string(), shown);
        }
        assert!(
            "10y"
                .parse::<PolicyDuration>()
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!("m".parse::<PolicyDuration>().is_err());
        assert!("99999999999999999999d".parse::<PolicyDuration>().is_err());
    }
}
