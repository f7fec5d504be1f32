//! Scanning many files on several threads: one [`Report`] per file.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::alerts::{Detector, Report};
use crate::engine::RuleSet;
use crate::input::{InputError, ReadStats, read_file};

/// The result of scanning one file.
#[derive(Debug)]
pub struct FileScan {
    /// The file.
    pub path: PathBuf,
    /// Its alerts and counts, or why it could not be read.
    pub result: Result<(Report, ReadStats), InputError>,
}

/// Scans `paths` with `rules` on up to `threads` threads (at least one),
/// keeping `max_events_per_alert` event references per alert. Results come
/// back in the order of `paths`.
pub fn scan_files(
    rules: &RuleSet,
    paths: &[PathBuf],
    threads: usize,
    max_events_per_alert: usize,
) -> Vec<FileScan> {
    scan_files_with_progress(rules, paths, threads, max_events_per_alert, &|_| {})
}

/// [`scan_files`], calling `done` with the number of files finished so far
/// after each file (from any thread), e.g. to drive a progress bar.
pub fn scan_files_with_progress(
    rules: &RuleSet,
    paths: &[PathBuf],
    threads: usize,
    max_events_per_alert: usize,
    done: &(dyn Fn(usize) + Sync),
) -> Vec<FileScan> {
    let finished = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<FileScan>>> =
        Mutex::new(std::iter::repeat_with(|| None).take(paths.len()).collect());
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(i) else { break };
            let mut detector = Detector::new(rules, max_events_per_alert);
            let result = read_file(path, |reference, event| detector.observe(reference, &event))
                .map(|stats| (detector.finish(), stats));
            let scan = FileScan {
                path: path.clone(),
                result,
            };
            results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(scan);
            done(finished.fetch_add(1, Ordering::Relaxed) + 1);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.max(1) {
            scope.spawn(worker);
        }
        worker();
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reports_errors() {
        let dir = std::env::temp_dir().join(format!("synod-ad-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("a.jsonl");
        std::fs::write(
            &good,
            "{\"Channel\": \"Security\", \"EventID\": 1102, \"Provider_Name\": \"Microsoft-Windows-Eventlog\"}\n",
        )
        .unwrap();
        let paths = vec![dir.join("missing.json"), good.clone(), good];
        let rules = RuleSet::builtin();
        let scans = scan_files(&rules, &paths, 3, 5);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(scans.len(), 3);
        assert!(scans[0].result.is_err());
        for scan in &scans[1..] {
            let (report, stats) = scan.result.as_ref().unwrap();
            assert_eq!(stats.events, 1);
            assert_eq!(report.alerts.len(), 1);
        }
    }
}
