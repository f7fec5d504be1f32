//! `on.schedule`: starts runs of stored workflows at their cron times (UTC).
//!
//! [`next_fire`] is pure: given the scheduled workflows and a time, it says
//! when the next fire is and which runs start then. [`run_schedules`] is the
//! loop `synod serve` runs: it asks a [`Clock`] for the time, waits until the
//! next fire, starts the due runs, and continues strictly after that minute,
//! so a minute fires at most once. Newly stored workflows are picked up
//! within [`RESCAN`]. Fires missed while the server was down are not made up.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::runs::StoredWorkflow;

/// Longest wait before the schedules are read again (workflows stored
/// meanwhile are picked up this fast).
pub const RESCAN: Duration = Duration::from_secs(60);

/// One scheduled run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRun {
    /// The stored workflow's name.
    pub workflow: String,
    /// The schedule entry's inputs.
    pub inputs: Value,
}

/// The earliest fire time strictly after `after` over every schedule of
/// `workflows`, with the runs that start then (in workflow order). `None`
/// when nothing is scheduled.
pub fn next_fire(
    workflows: &[StoredWorkflow],
    after: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Vec<ScheduledRun>)> {
    let mut best: Option<(DateTime<Utc>, Vec<ScheduledRun>)> = None;
    for stored in workflows {
        for trigger in &stored.workflow.triggers.schedules {
            let Some(at) = trigger.schedule.next_after(after) else {
                continue;
            };
            let run = ScheduledRun {
                workflow: stored.workflow.name.clone(),
                inputs: trigger.inputs.clone(),
            };
            match &mut best {
                Some((best_at, runs)) if *best_at == at => runs.push(run),
                Some((best_at, _)) if *best_at < at => {}
                _ => best = Some((at, vec![run])),
            }
        }
    }
    best
}

/// Where the scheduler gets the time from and how it waits (a fake in tests).
#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

/// The system clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Starts scheduled runs until `shutdown`: `workflows()` gives the stored
/// workflows, `start(run)` starts one run (its errors are logged).
pub async fn run_schedules<W, S, F>(
    clock: &dyn Clock,
    workflows: W,
    start: S,
    shutdown: CancellationToken,
) where
    W: Fn() -> Vec<StoredWorkflow>,
    S: Fn(ScheduledRun) -> F,
    F: Future<Output = Result<String, String>>,
{
    let mut after = clock.now();
    loop {
        let now = clock.now();
        let next = next_fire(&workflows(), after.max(now));
        let wait = match &next {
            Some((at, _)) => (*at - now).to_std().unwrap_or_default().min(RESCAN),
            None => RESCAN,
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = clock.sleep(wait) => {}
        }
        let Some((at, runs)) = next else {
            continue;
        };
        if clock.now() < at {
            continue; // woke up to rescan, not to fire
        }
        after = at;
        for run in runs {
            let workflow = run.workflow.clone();
            match start(run).await {
                Ok(run_id) => {
                    tracing::info!(workflow = %workflow, run_id = %run_id, at = %at, "scheduled run started");
                }
                Err(error) => {
                    tracing::error!(workflow = %workflow, error = %error, "scheduled run could not start");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn stored(source: &str) -> StoredWorkflow {
        let workflow = synod_workflow::load(source, "s.yaml").expect("test workflow loads");
        StoredWorkflow {
            source: source.to_owned(),
            file: "s.yaml".to_owned(),
            workflow: Arc::new(workflow),
        }
    }

    const EVERY_15: &str = r#"name: sweep
on:
  schedule:
    - cron: "*/15 * * * *"
      inputs: { scope: quick }
    - cron: "0 3 * * *"
      inputs: { scope: full }
inputs:
  scope: { type: string }
steps:
  scan: { uses: demo/scan, with: { scope: "${{ inputs.scope }}" } }
"#;

    const HOURLY: &str = r#"name: report
on:
  schedule: { cron: "@hourly" }
steps:
  report: { uses: demo/report }
"#;

    fn at(hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, hour, minute, second)
            .single()
            .expect("valid time")
    }

    #[test]
    fn the_next_fire_is_the_earliest_schedule_with_every_run_due_then() {
        let workflows = [stored(EVERY_15), stored(HOURLY)];
        let (when, runs) = next_fire(&workflows, at(12, 1, 30)).unwrap();
        assert_eq!(when, at(12, 15, 0));
        assert_eq!(
            runs,
            [ScheduledRun {
                workflow: "sweep".into(),
                inputs: json!({"scope": "quick"})
            }]
        );
        // 13:00 is due for both workflows; strictly after the fire time.
        let (when, runs) = next_fire(&workflows, at(12, 45, 0)).unwrap();
        assert_eq!(when, at(13, 0, 0));
        let names: Vec<&str> = runs.iter().map(|run| run.workflow.as_str()).collect();
        assert_eq!(names, ["sweep", "report"]);
        let (when, runs) = next_fire(&workflows[..1], at(2, 59, 0)).unwrap();
        assert_eq!(when, at(3, 0, 0));
        assert_eq!(runs.len(), 2, "both entries of `sweep` fire at 03:00");
        assert!(next_fire(&[], at(0, 0, 0)).is_none());
    }

    /// When a run started and its `scope` input.
    type Fired = (DateTime<Utc>, String);

    /// A clock whose sleeps move its time forward at once.
    struct FakeClock(Mutex<DateTime<Utc>>);

    #[async_trait::async_trait]
    impl Clock for FakeClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }

        async fn sleep(&self, duration: Duration) {
            {
                let mut now = self.0.lock().unwrap();
                *now += chrono::Duration::from_std(duration).unwrap();
            }
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_loop_starts_each_due_run_once_at_its_minute() {
        let clock = FakeClock(Mutex::new(at(12, 1, 30)));
        let started: Arc<Mutex<Vec<Fired>>> = Arc::default();
        let shutdown = CancellationToken::new();
        let workflows = vec![stored(EVERY_15)];
        let record = Arc::clone(&started);
        let stop = shutdown.clone();
        let clock_ref = &clock;
        run_schedules(
            &clock,
            || workflows.clone(),
            move |run| {
                let record = Arc::clone(&record);
                let stop = stop.clone();
                async move {
                    let mut started = record.lock().unwrap();
                    started.push((clock_ref.now(), run.inputs["scope"].to_string()));
                    if started.len() == 3 {
                        stop.cancel();
                    }
                    Ok("run".to_owned())
                }
            },
            shutdown,
        )
        .await;
        let started = started.lock().unwrap().clone();
        assert_eq!(
            started,
            [
                (at(12, 15, 0), "\"quick\"".to_owned()),
                (at(12, 30, 0), "\"quick\"".to_owned()),
                (at(12, 45, 0), "\"quick\"".to_owned()),
            ]
        );
    }
}
