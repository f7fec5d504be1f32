//! `on.schedule` cron expressions and their next fire times: the one cron
//! implementation (the loader reports parse errors at their field; the
//! server's scheduler asks for fire times). Pure; all times are UTC.
//!
//! Syntax: five fields, `minute hour day-of-month month day-of-week`, each a comma list of
//! `*`, `N`, `N-M`, with an optional `/step` (`*/15`, `8-18/2`, `5/20` = `5-59/20`).
//! Months accept `JAN`..`DEC`, days of week `SUN`..`SAT` (case-insensitive); day of week
//! `0` and `7` are both Sunday. Shorthands: `@yearly` (`@annually`), `@monthly`,
//! `@weekly`, `@daily` (`@midnight`), `@hourly`.
//!
//! Day matching follows Vixie cron: when both day-of-month and day-of-week are restricted
//! (neither starts with `*`), a day matches if **either** matches (`0 0 13 * FRI` fires on
//! every 13th and every Friday); otherwise both must match.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};

/// A parsed five-field cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expression: String,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    day_of_month_star: bool,
    day_of_week_star: bool,
}

/// A cron expression that does not parse, or never fires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression `{expression}`: {message}")]
pub struct CronError {
    /// The expression as written.
    pub expression: String,
    /// The field at fault (`minute`, `hour`, `day-of-month`, `month`, `day-of-week`), if one.
    pub field: Option<&'static str>,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Where, as a byte range in the expression: the field at fault, or the
    /// whole expression.
    pub range: Range<usize>,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTH_NAMES,
    },
    // 7 is accepted as Sunday and folded into 0 after parsing.
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: DAY_NAMES,
    },
];

/// How far ahead [`CronSchedule::next_after`] searches: the whole 400-year Gregorian
/// cycle, after which dates and weekdays repeat, so `None` means "never fires". A
/// day-of-month + month + weekday combination can be 11 or more years apart (e.g. `* * */7
/// 4 1`, found by the property test); an impossible date (`0 0 30 2 *`) costs about 16k
/// cheap steps (months and days are skipped whole).
const SEARCH_YEARS: i32 = 400;

// === impl CronSchedule ===

impl CronSchedule {
    /// Parses an expression.
    pub fn parse(expression: &str) -> Result<CronSchedule, CronError> {
        let trimmed = expression.trim();
        let leading = expression.len() - expression.trim_start().len();
        let whole = leading..leading + trimmed.len();
        let error = |field: Option<&'static str>, message: String, range: Range<usize>| CronError {
            expression: expression.to_owned(),
            field,
            message,
            range,
        };
        // Byte ranges of the whitespace-separated fields as written.
        let mut spans: Vec<Range<usize>> = Vec::new();
        let mut start = None;
        for (index, c) in expression.char_indices().chain([(expression.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(index),
                (true, Some(begin)) => {
                    spans.push(begin..index);
                    start = None;
                }
                _ => {}
            }
        }
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(error(
                    None,
                    format!(
                        "unknown shorthand `{trimmed}`; use @yearly, @monthly, @weekly, @daily or @hourly"
                    ),
                    whole,
                ));
            }
            _ => trimmed,
        };
        let macro_used = expanded != trimmed;
        let field_range = |index: usize| {
            if macro_used {
                whole.clone()
            } else {
                spans.get(index).cloned().unwrap_or_else(|| whole.clone())
            }
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            let range = match (spans.get(5), spans.last()) {
                (Some(extra), Some(last)) => extra.start..last.end,
                _ => whole.clone(),
            };
            return Err(error(
                None,
                format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {}; e.g. `*/15 * * * *`",
                    parts.len()
                ),
                range,
            ));
        }
        let mut sets = [0u64; 5];
        for (index, (part, field)) in parts.iter().zip(&FIELDS).enumerate() {
            sets[index] = parse_field(part, field)
                .map_err(|message| error(Some(field.name), message, field_range(index)))?;
        }
        let mut days_of_week = sets[4];
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        let schedule = CronSchedule {
            expression: trimmed.to_owned(),
            minutes: sets[0],
            hours: sets[1],
            days_of_month: sets[2],
            months: sets[3],
            days_of_week,
            day_of_month_star: parts[2].starts_with('*'),
            day_of_week_star: parts[4].starts_with('*'),
        };
        schedule
            .check_fires()
            .map_err(|message| error(Some("day-of-month"), message, field_range(2)))?;
        Ok(schedule)
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first fire time strictly after `after` (whole minutes, UTC), or `None` if the
    /// schedule never fires (nothing in a whole 400-year Gregorian cycle).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.naive_utc();
        let mut time = start
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))?
            .checked_add_signed(Duration::minutes(1))?;
        let last_year = start.year() + SEARCH_YEARS;
        while time.year() <= last_year {
            if !has(self.months, time.month()) {
                time = first_of_next_month(time.date())?;
            } else if !self.day_matches(time.date()) {
                time = time.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
            } else if !has(self.hours, time.hour()) {
                time = time.with_minute(0)? + Duration::hours(1);
            } else if !has(self.minutes, time.minute()) {
                time += Duration::minutes(1);
            } else {
                return Some(time.and_utc());
            }
        }
        None
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        self.fires_between(after, DateTime::<Utc>::MAX_UTC, count)
    }

    /// Fire times in `(after, until]`, at most `limit` of them: e.g. the runs a scheduler
    /// missed while it was down, so it can fire (or skip) them exactly once.
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        let mut cursor = after;
        while times.len() < limit {
            match self.next_after(cursor) {
                Some(next) if next <= until => {
                    times.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        times
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let by_month_day = has(self.days_of_month, date.day());
        let by_week_day = has(self.days_of_week, date.weekday().num_days_from_sunday());
        if self.day_of_month_star || self.day_of_week_star {
            by_month_day && by_week_day
        } else {
            by_month_day || by_week_day
        }
    }

    /// Rejects day-of-month/month combinations that never occur (`0 0 30 2 *`).
    fn check_fires(&self) -> Result<(), String> {
        if self.day_of_month_star || !self.day_of_week_star {
            return Ok(());
        }
        for month in 1..=12u32 {
            if !has(self.months, month) {
                continue;
            }
            let longest = match month {
                2 => 29,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if (1..=longest).any(|day| has(self.days_of_month, day)) {
                return Ok(());
            }
        }
        Err(
            "the schedule never fires: no selected month has the selected day of the month"
                .to_owned(),
        )
    }
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CronSchedule::parse(text)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

// === parsing ===

fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let mut set = 0u64;
    for item in text.split(',') {
        set |= parse_item(item, field)?;
    }
    Ok(set)
}

fn parse_item(item: &str, field: &Field) -> Result<u64, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => {
            let step: u32 = step.parse().ok().filter(|step| *step > 0).ok_or_else(|| {
                format!("step `{step}` in `{item}` must be a whole number of at least 1")
            })?;
            (range, Some(step))
        }
        None => (item, None),
    };
    let (low, high) = if range == "*" {
        (field.min, field.max)
    } else if let Some((low, high)) = range.split_once('-') {
        let low = parse_value(low, field)?;
        let high = parse_value(high, field)?;
        if low > high {
            return Err(format!(
                "range `{range}` runs backwards; write it low-high (split a wrap-around into two ranges, e.g. `22-23,0-2`)"
            ));
        }
        (low, high)
    } else {
        let value = parse_value(range, field)?;
        // Vixie cron: `N/step` means `N-max/step`.
        (value, if step.is_some() { field.max } else { value })
    };
    let step = step.unwrap_or(1);
    let mut set = 0u64;
    let mut value = low;
    while value <= high {
        set |= 1 << value;
        let Some(next) = value.checked_add(step) else {
            break;
        };
        value = next;
    }
    Ok(set)
}

fn parse_value(text: &str, field: &Field) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("a {} value is empty", field.name));
    }
    if let Some(position) = field
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        let offset = if field.names.len() == 12 { 1 } else { 0 };
        return Ok(position as u32 + offset);
    }
    let names_hint = if field.names.is_empty() {
        String::new()
    } else {
        format!(" or one of {}", field.names.join(", "))
    };
    let value: u32 = text.parse().map_err(|_| {
        format!(
            "`{text}` is not a valid {}: use a number {}-{}{names_hint}",
            field.name, field.min, field.max
        )
    })?;
    if value < field.min || value > field.max {
        return Err(format!(
            "{} `{value}` is out of range {}-{}",
            field.name, field.min, field.max
        ));
    }
    Ok(value)
}

fn has(set: u64, value: u32) -> bool {
    value < 64 && set & (1 << value) != 0
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDateTime> {
    let (year, month) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(expression: &str, after: &str) -> String {
        let schedule = CronSchedule::parse(expression).unwrap();
        schedule.next_after(at(after)).unwrap().to_rfc3339()
    }

    #[test]
    fn steps_ranges_lists_and_names() {
        assert_eq!(
            next("*/15 * * * *", "2026-11-23T10:07:30Z"),
            "2026-11-23T10:15:00+00:00"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-23T10:15:00Z"),
            "2026-11-23T10:30:00+00:00",
            "strictly after"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-23T23:59:00Z"),
            "2026-11-24T00:00:00+00:00"
        );
        assert_eq!(
            next("5/20 * * * *", "2026-11-23T10:26:00Z"),
            "2026-11-23T10:45:00+00:00"
        );
        assert_eq!(
            next("0 8-18/2 * * *", "2026-11-23T09:00:00Z"),
            "2026-11-23T10:00:00+00:00"
        );
        assert_eq!(
            next("0 8-18/2 * * *", "2026-11-23T18:00:00Z"),
            "2026-11-24T08:00:00+00:00"
        );
        assert_eq!(
            next("30 2 1 JAN,jul *", "2026-02-01T00:00:00Z"),
            "2026-07-01T02:30:00+00:00"
        );
        // 2026-11-28 is a Saturday
        assert_eq!(
            next("0 9 * * MON-FRI", "2026-11-28T12:00:00Z"),
            "2026-11-30T09:00:00+00:00"
        );
        assert_eq!(
            next("0 9 * * mon-fri", "2026-11-30T08:59:59Z"),
            "2026-11-30T09:00:00+00:00"
        );
        assert_eq!(
            next("0 0 1 1 *", "2026-12-31T23:59:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("15,45 1,13 * * *", "2026-11-23T13:30:00Z"),
            "2026-11-23T13:45:00+00:00"
        );
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        // 2026-11-29 is a Sunday
        assert_eq!(
            next("0 0 * * 0", "2026-11-23T00:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-11-23T00:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * * SUN", "2026-11-23T00:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * * 5-7", "2026-11-28T00:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // both restricted: 13th OR Friday. 2026-11-27 is a Friday, 2026-12-13 a Sunday
        let schedule = CronSchedule::parse("0 0 13 * FRI").unwrap();
        let times: Vec<String> = schedule
            .upcoming(at("2026-11-23T00:00:00Z"), 4)
            .iter()
            .map(|t| t.date_naive().to_string())
            .collect();
        assert_eq!(
            times,
            ["2026-11-27", "2026-12-04", "2026-12-11", "2026-12-13"]
        );
        // day-of-week starts with `*`: AND semantics (every other day... that is also the 13th)
        assert_eq!(
            next("0 0 13 * */2", "2026-11-23T00:00:00Z"),
            "2026-12-13T00:00:00+00:00"
        );
    }

    #[test]
    fn missed_fires_between_two_times() {
        let schedule = CronSchedule::parse("*/20 * * * *").unwrap();
        let missed: Vec<String> = schedule
            .fires_between(at("2026-11-23T10:00:00Z"), at("2026-11-23T11:00:00Z"), 10)
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect();
        assert_eq!(missed, ["10:20", "10:40", "11:00"]);
        let capped =
            schedule.fires_between(at("2026-11-23T10:00:00Z"), at("2026-11-24T10:00:00Z"), 2);
        assert_eq!(capped.len(), 2);
        assert!(
            schedule
                .fires_between(at("2026-11-23T10:00:00Z"), at("2026-11-23T10:19:00Z"), 5)
                .is_empty()
        );
    }

    #[test]
    fn leap_day_and_shorthands() {
        assert_eq!(
            next("0 0 29 2 *", "2025-03-01T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 29 2 *", "2096-03-01T00:00:00Z"),
            "2104-02-29T00:00:00+00:00"
        );
        assert_eq!(
            next("@hourly", "2026-11-23T10:07:00Z"),
            "2026-11-23T11:00:00+00:00"
        );
        assert_eq!(
            next("@daily", "2026-11-23T10:07:00Z"),
            "2026-11-24T00:00:00+00:00"
        );
        assert_eq!(
            next("@weekly", "2026-11-23T10:07:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            next("@monthly", "2026-11-23T10:07:00Z"),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@yearly", "2026-11-23T10:07:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("0 12 31 * *", "2026-11-01T00:00:00Z"),
            "2026-12-31T12:00:00+00:00"
        );
    }

    #[test]
    fn errors_name_the_field_and_the_fix() {
        for (expression, field, fragment) in [
            (
                "60 * * * *",
                Some("minute"),
                "minute `60` is out of range 0-59",
            ),
            ("0 25 * * *", Some("hour"), "hour `25` is out of range 0-23"),
            ("0 0 0 * *", Some("day-of-month"), "out of range 1-31"),
            ("0 0 * 13 *", Some("month"), "out of range 1-12"),
            ("0 0 * FOO *", Some("month"), "one of JAN, FEB"),
            ("0 0 * * 8", Some("day-of-week"), "out of range 0-7"),
            ("5-2 * * * *", Some("minute"), "runs backwards"),
            ("*/0 * * * *", Some("minute"), "at least 1"),
            ("1,,2 * * * *", Some("minute"), "empty"),
            ("* * * *", None, "expected 5 fields"),
            ("* * * * * *", None, "found 6"),
            ("@reboot", None, "unknown shorthand"),
            ("0 0 30 2 *", Some("day-of-month"), "never fires"),
            ("0 0 31 4,6,9,11 *", Some("day-of-month"), "never fires"),
        ] {
            let error = CronSchedule::parse(expression).unwrap_err();
            assert_eq!(error.field, field, "{expression}");
            let message = error.to_string();
            assert!(message.contains(fragment), "{expression}: {message}");
            assert!(message.contains(&format!("`{expression}`")), "{message}");
        }
        // Ranges point at the field (or the surplus fields) as written.
        for (expression, at) in [
            ("0 25 * * *", "25"),
            ("  0 0 * FOO *", "FOO"),
            ("*/0 * * * *", "*/0"),
            ("0 0 * * * *", "*"),
            ("0 0 * * * * *", "* *"),
            ("0 0 30 2 *", "30"),
            ("@sometimes", "@sometimes"),
            (" * * ", "* *"),
        ] {
            let error = CronSchedule::parse(expression).unwrap_err();
            assert_eq!(&expression[error.range.clone()], at, "{expression}");
        }
        // Feb 30 is fine when a weekday can also fire it (OR semantics)
        assert!(CronSchedule::parse("0 0 30 2 MON").is_ok());
    }
}
