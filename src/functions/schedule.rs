//! NCRONTAB schedules as Azure Functions timers use them: six fields,
//! `{second} {minute} {hour} {day} {month} {day-of-week}`, evaluated in UTC.
//!
//! Only `dev` mode needs this (to fire the timers in-process on the schedules of their
//! function.json). Hand-written because the cron crates pull in chrono and macro stacks for
//! what is a hundred lines: each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`,
//! or a comma list of those. Names (`MON`, `JAN`) are not supported and are refused.

use std::time::Duration;

use time::OffsetDateTime;

/// Why a schedule string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid NCRONTAB schedule {schedule:?}: {reason}")]
pub struct ScheduleError {
    schedule: String,
    reason: String,
}

/// A parsed six-field schedule: for each field, the set of allowed values as a bit mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    fields: [u64; 6],
}

/// (lowest, highest) value of each field.
const BOUNDS: [(u32, u32); 6] = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];

impl Schedule {
    /// Parse a six-field NCRONTAB expression.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let err = |reason: String| ScheduleError {
            schedule: text.to_owned(),
            reason,
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 6 {
            return Err(err(format!("expected 6 fields, found {}", parts.len())));
        }
        let mut fields = [0u64; 6];
        for (i, part) in parts.iter().enumerate() {
            fields[i] =
                parse_field(part, BOUNDS[i]).map_err(|r| err(format!("field {}: {r}", i + 1)))?;
        }
        Ok(Self {
            text: text.to_owned(),
            fields,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing time strictly after `after` (UTC, whole seconds).
    pub fn next_after(&self, after: OffsetDateTime) -> OffsetDateTime {
        let mut t = after.replace_nanosecond(0).unwrap_or(after) + Duration::from_secs(1);
        // Advance second by second inside matching minutes, minute by minute otherwise. A
        // schedule whose day and month never meet (Feb 30) would loop: bound it to 5 years.
        let limit = after + Duration::from_secs(5 * 366 * 24 * 3600);
        while t < limit {
            let date_ok = self.has(3, t.day().into())
                && self.has(4, u8::from(t.month()).into())
                && self.has(5, t.weekday().number_days_from_sunday().into());
            if !date_ok {
                t = (t.replace_time(time::Time::MIDNIGHT)) + Duration::from_secs(24 * 3600);
                continue;
            }
            if !self.has(2, t.hour().into()) {
                t = t.replace_time(
                    time::Time::from_hms(t.hour(), 0, 0).unwrap_or(time::Time::MIDNIGHT),
                ) + Duration::from_secs(3600);
                continue;
            }
            if !self.has(1, t.minute().into()) {
                t = t.replace_time(
                    time::Time::from_hms(t.hour(), t.minute(), 0).unwrap_or(time::Time::MIDNIGHT),
                ) + Duration::from_secs(60);
                continue;
            }
            if self.has(0, t.second().into()) {
                return t;
            }
            t += Duration::from_secs(1);
        }
        limit
    }

    fn has(&self, field: usize, value: u32) -> bool {
        self.fields[field] & (1u64 << value) != 0
    }
}

fn parse_field(part: &str, (lo, hi): (u32, u32)) -> Result<u64, String> {
    let mut mask = 0u64;
    for item in part.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step {s:?}"))?),
            None => (item, 1),
        };
        if step == 0 {
            return Err("step 0".to_owned());
        }
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a)?, number(b)?)
        } else {
            let n = number(range)?;
            // `5/15` means "from 5 to the end, every 15", as in cron.
            (n, if item.contains('/') { hi } else { n })
        };
        if start < lo || end > hi || start > end {
            return Err(format!("{item:?} is outside {lo}-{hi}"));
        }
        let mut v = start;
        while v <= end {
            mask |= 1u64 << v;
            v += step;
        }
    }
    Ok(mask)
}

fn number(s: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_ten_minutes_fires_on_the_tens() {
        let s = Schedule::parse("0 */10 * * * *").unwrap();
        assert_eq!(
            s.next_after(datetime!(2026-11-27 04:21:03 UTC)),
            datetime!(2026-11-27 04:30:00 UTC)
        );
        assert_eq!(
            s.next_after(datetime!(2026-11-27 04:30:00 UTC)),
            datetime!(2026-11-27 04:40:00 UTC)
        );
        assert_eq!(
            s.next_after(datetime!(2026-11-27 23:55:00 UTC)),
            datetime!(2026-11-28 00:00:00 UTC)
        );
    }

    #[test]
    fn every_five_minutes_and_fixed_times() {
        let s = Schedule::parse("0 */5 * * * *").unwrap();
        assert_eq!(
            s.next_after(datetime!(2026-11-27 04:21:03 UTC)),
            datetime!(2026-11-27 04:25:00 UTC)
        );
        let s = Schedule::parse("30 15 9 * * 1-5").unwrap();
        // 2026-11-27 is a Friday; the next weekday after Friday 10:00 is Monday the 30th.
        assert_eq!(
            s.next_after(datetime!(2026-11-27 10:00:00 UTC)),
            datetime!(2026-11-30 09:15:30 UTC)
        );
        let s = Schedule::parse("*/20 * * * * *").unwrap();
        assert_eq!(
            s.next_after(datetime!(2026-11-27 10:00:41 UTC)),
            datetime!(2026-11-27 10:01:00 UTC)
        );
    }

    #[test]
    fn malformed_schedules_are_refused() {
        for bad in [
            "",
            "0 */10 * * *",
            "0 */0 * * * *",
            "61 * * * * *",
            "0 * * * JAN *",
            "0 5-1 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
