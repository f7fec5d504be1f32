//! Property tests of the cron implementation: parsing never panics, and
//! fire times are later, minute-aligned and stable.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use synod_workflow::cron::CronSchedule;

fn cron_field(max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        (1..=max).prop_map(|step| format!("*/{step}")),
        (0..=max).prop_map(|value| value.to_string()),
        (0..=max, 0..=max, 1..=5u32).prop_map(|(a, b, step)| {
            let (low, high) = (a.min(b), a.max(b));
            format!("{low}-{high}/{step}")
        }),
        (0..=max, 0..=max).prop_map(|(a, b)| format!("{a},{b}")),
    ]
}

fn cron_expression() -> impl Strategy<Value = String> {
    (
        cron_field(59),
        cron_field(23),
        cron_field(27),
        cron_field(11),
        cron_field(6),
    )
        .prop_map(|(minute, hour, day, month, weekday)| {
            // day-of-month and month fields are 1-based: shift numbers by one
            let one_based = |field: String| {
                let mut out = String::new();
                let mut number = String::new();
                let mut after_slash = false;
                for c in field.chars().chain(std::iter::once(' ')) {
                    if c.is_ascii_digit() {
                        number.push(c);
                        continue;
                    }
                    if !number.is_empty() {
                        let value: u32 = number.parse().unwrap();
                        let shifted = if after_slash { value } else { value + 1 };
                        out.push_str(&shifted.to_string());
                        number.clear();
                    }
                    after_slash = c == '/';
                    if c != ' ' {
                        out.push(c);
                    }
                }
                out
            };
            format!(
                "{} {} {} {} {}",
                minute,
                hour,
                one_based(day),
                one_based(month),
                weekday
            )
        })
}

fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    // 2000-01-01 .. 2100-01-01
    (946_684_800i64..4_102_444_800i64).prop_map(|secs| Utc.timestamp_opt(secs, 0).unwrap())
}

/// Found by `next_fire_is_later_aligned_and_stable`: day 1, 8, 15, 22 or 29
/// of April that is also a Monday (`*/7` restricts the day, so both day
/// fields must hold) does not occur from 2003 to 2012.
#[test]
fn a_rare_day_weekday_combination_is_found_years_ahead() {
    let schedule = CronSchedule::parse("* * */7 4 1").unwrap();
    let after = Utc.timestamp_opt(1_020_124_740, 0).unwrap(); // 2002-04-29T23:59:00Z
    let next = schedule.next_after(after).unwrap();
    assert_eq!(next, Utc.timestamp_opt(1_364_774_400, 0).unwrap(), "{next}"); // 2013-04-01T00:00Z
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cron_parse_never_panics(text in "\\PC{0,40}") {
        let _ = CronSchedule::parse(&text);
    }

    #[test]
    fn cron_parse_never_panics_on_cron_like_text(text in "[0-9*/,\\-A-Za-z@ ]{0,30}") {
        if let Ok(schedule) = CronSchedule::parse(&text) {
            let _ = schedule.next_after(Utc.timestamp_opt(1_763_900_000, 0).unwrap());
        }
    }

    #[test]
    fn next_fire_is_later_aligned_and_stable(expression in cron_expression(), after in any_time()) {
        let schedule = CronSchedule::parse(&expression).unwrap();
        let next = schedule.next_after(after).unwrap();
        prop_assert!(next > after);
        prop_assert_eq!(next.timestamp() % 60, 0);
        // asking again from just before the fire time finds the same time
        let again = schedule.next_after(next - chrono::Duration::seconds(1)).unwrap();
        prop_assert_eq!(again, next);
    }

}
