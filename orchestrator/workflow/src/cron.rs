//! Cron expressions for `on.schedule`: five fields (minute, hour, day of
//! month, month, day of week) with `*`, lists, ranges, steps and month and
//! weekday names, or one of the `@hourly`-style macros. Parsed into
//! [`CronSchedule`], which answers whether a minute matches; errors point at
//! the offending field.

use std::ops::Range;

/// A parsed cron expression: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    /// Allowed minutes (bit n = minute n).
    pub minutes: u64,
    /// Allowed hours.
    pub hours: u32,
    /// Allowed days of the month (bit n = day n, 1..=31).
    pub days_of_month: u32,
    /// Allowed months (bit n = month n, 1..=12).
    pub months: u16,
    /// Allowed weekdays (bit n = day n, 0 = Sunday).
    pub days_of_week: u8,
    /// Whether day of month was restricted (`*` or not): cron matches when
    /// either day field matches if both are restricted.
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

/// Why a cron expression does not parse; `range` is a byte range in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    /// What is wrong.
    pub message: String,
    /// Where, in the cron text.
    pub range: Range<usize>,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    FieldSpec {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    FieldSpec {
        name: "day of week",
        min: 0,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
];

const MACROS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl CronSchedule {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<CronSchedule, CronError> {
        let trimmed = text.trim();
        let leading = text.len() - text.trim_start().len();
        if trimmed.starts_with('@') {
            for (name, expansion) in MACROS {
                if trimmed == *name {
                    return CronSchedule::parse(expansion);
                }
            }
            let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
            return Err(CronError {
                message: format!(
                    "unknown cron macro `{trimmed}`; known: {}",
                    names.join(", ")
                ),
                range: leading..leading + trimmed.len(),
            });
        }
        let mut fields: Vec<(usize, &str)> = Vec::new();
        let mut offset = 0;
        for part in text.split(' ') {
            if !part.is_empty() {
                fields.push((offset, part));
            }
            offset += part.len() + 1;
        }
        if fields.len() != 5 {
            let range = match fields.get(5) {
                Some((start, _)) => *start..text.len(),
                None => leading..leading + trimmed.len(),
            };
            return Err(CronError {
                message: format!(
                    "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found {}",
                    fields.len()
                ),
                range,
            });
        }
        let mut values = [0u64; 5];
        for (index, (start, part)) in fields.iter().enumerate() {
            values[index] = parse_field(part, &FIELDS[index]).map_err(|mut error| {
                error.range = error.range.start + start..error.range.end + start;
                error
            })?;
        }
        // Sunday may be written 0 or 7.
        let mut days_of_week = values[4];
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & !(1 << 7);
        }
        Ok(CronSchedule {
            minutes: values[0],
            hours: values[1] as u32,
            days_of_month: values[2] as u32,
            months: values[3] as u16,
            days_of_week: days_of_week as u8,
            day_of_month_restricted: fields[2].1 != "*",
            day_of_week_restricted: fields[4].1 != "*",
        })
    }

    /// Whether the schedule fires at this minute. `weekday` is 0 for Sunday.
    pub fn matches(&self, minute: u32, hour: u32, day: u32, month: u32, weekday: u32) -> bool {
        let bit = |set: u64, value: u32| value < 64 && set & (1 << value) != 0;
        if !bit(self.minutes, minute)
            || !bit(u64::from(self.hours), hour)
            || !bit(u64::from(self.months), month)
        {
            return false;
        }
        let day_matches = bit(u64::from(self.days_of_month), day);
        let weekday_matches = bit(u64::from(self.days_of_week), weekday);
        if self.day_of_month_restricted && self.day_of_week_restricted {
            day_matches || weekday_matches
        } else {
            day_matches && weekday_matches
        }
    }
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, CronError> {
    let mut set = 0u64;
    let mut offset = 0;
    for item in text.split(',') {
        let here = offset..offset + item.len();
        offset += item.len() + 1;
        if item.is_empty() {
            return Err(CronError {
                message: format!("empty list entry in the {} field", spec.name),
                range: here.start..here.start + 1,
            });
        }
        let (range_text, step) = match item.split_once('/') {
            Some((range_text, step_text)) => {
                let step_start = here.start + range_text.len() + 1;
                let step = step_text.parse::<u32>().ok().filter(|step| *step > 0);
                let Some(step) = step else {
                    return Err(CronError {
                        message: format!(
                            "`{step_text}` is not a step in the {} field; write e.g. `*/5`",
                            spec.name
                        ),
                        range: step_start..step_start + step_text.len().max(1),
                    });
                };
                (range_text, step)
            }
            None => (item, 1),
        };
        let (low, high) = if range_text == "*" {
            (spec.min, spec.max)
        } else if let Some((low, high)) = range_text.split_once('-') {
            let low_value = value(low, spec, here.start)?;
            let high_start = here.start + low.len() + 1;
            let high_value = value(high, spec, high_start)?;
            if low_value > high_value {
                return Err(CronError {
                    message: format!(
                        "the range `{range_text}` in the {} field runs backwards",
                        spec.name
                    ),
                    range: here.start..here.start + range_text.len(),
                });
            }
            (low_value, high_value)
        } else {
            let single = value(range_text, spec, here.start)?;
            if item.contains('/') {
                (single, spec.max)
            } else {
                (single, single)
            }
        };
        let mut current = low;
        while current <= high {
            set |= 1 << current;
            let Some(next) = current.checked_add(step) else {
                break; // a step past u32::MAX: nothing further in range
            };
            current = next;
        }
    }
    Ok(set)
}

fn value(text: &str, spec: &FieldSpec, start: usize) -> Result<u32, CronError> {
    let range = start..start + text.len().max(1);
    if let Ok(number) = text.parse::<u32>() {
        if number < spec.min || number > spec.max {
            return Err(CronError {
                message: format!(
                    "{number} is out of range for the {} field ({}-{})",
                    spec.name, spec.min, spec.max
                ),
                range,
            });
        }
        return Ok(number);
    }
    let upper = text.to_ascii_uppercase();
    if let Some(index) = spec.names.iter().position(|name| *name == upper) {
        let base = if spec.min == 1 { 1 } else { 0 };
        return Ok(index as u32 + base);
    }
    let names = if spec.names.is_empty() {
        String::new()
    } else {
        format!(" or a name ({})", spec.names.join(", "))
    };
    Err(CronError {
        message: format!(
            "`{text}` is not valid in the {} field; use {}-{}{names}, `*`, lists `a,b`, ranges `a-b` and steps `*/n`",
            spec.name, spec.min, spec.max
        ),
        range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_step_selects_only_the_start_without_overflowing() {
        let schedule = CronSchedule::parse("1-59/4294967295 * * * *").unwrap();
        assert!(schedule.matches(1, 0, 1, 1, 0));
        assert!(!schedule.matches(0, 0, 1, 1, 0));
    }

    #[test]
    fn parses_fields_names_and_macros() {
        let schedule = CronSchedule::parse("*/15 9-17 * * MON-FRI").unwrap();
        assert!(schedule.matches(30, 9, 3, 6, 1));
        assert!(!schedule.matches(31, 9, 3, 6, 1));
        assert!(!schedule.matches(30, 9, 3, 6, 0));
        let daily = CronSchedule::parse("@daily").unwrap();
        assert!(daily.matches(0, 0, 12, 2, 4));
        let sunday = CronSchedule::parse("0 0 * * 7").unwrap();
        assert!(sunday.matches(0, 0, 5, 5, 0));
        // Both day fields restricted: either matches.
        let either = CronSchedule::parse("0 0 1 * MON").unwrap();
        assert!(either.matches(0, 0, 1, 3, 3));
        assert!(either.matches(0, 0, 9, 3, 1));
        assert!(!either.matches(0, 0, 9, 3, 2));
        assert!(CronSchedule::parse("5,10 1/2 1-31/7 jan,dec *").is_ok());
    }

    #[test]
    fn errors_point_at_the_field() {
        let text = "0 25 * * *";
        let error = CronSchedule::parse(text).unwrap_err();
        assert_eq!(&text[error.range.clone()], "25");
        assert!(error.message.contains("hour field (0-23)"), "{error}");
        let error = CronSchedule::parse("* * *").unwrap_err();
        assert!(error.message.contains("found 3"));
        let text = "0 0 * FOO *";
        let error = CronSchedule::parse(text).unwrap_err();
        assert_eq!(&text[error.range.clone()], "FOO");
        let text = "*/0 * * * *";
        let error = CronSchedule::parse(text).unwrap_err();
        assert_eq!(&text[error.range.clone()], "0");
        let error = CronSchedule::parse("@sometimes").unwrap_err();
        assert!(error.message.contains("@hourly"));
        let text = "0 0 * * * *";
        let error = CronSchedule::parse(text).unwrap_err();
        assert_eq!(&text[error.range.clone()], "*");
    }
}
