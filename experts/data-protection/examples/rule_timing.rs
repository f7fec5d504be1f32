//! Times each rule's regex and the keyword prefilter over a text file, to
//! find slow rules: `cargo run -p synod-expert-data-protection --release
//! --example rule_timing -- <file>`.

use std::time::Instant;

use synod_expert_data_protection::Scanner;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: rule_timing <text file>");
    let text = std::fs::read_to_string(&path).expect("readable UTF-8 file");
    let scanner = Scanner::builtin();
    let mb = text.len() as f64 / 1e6;
    if std::env::var_os("CHUNKS_ONLY").is_some() {
        let chunks: Vec<&str> = text
            .as_bytes()
            .chunks(64 << 10)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        for _ in 0..10 {
            for chunk in &chunks {
                scanner.scan(chunk);
            }
        }
        return;
    }
    let mut times: Vec<(f64, String, usize)> = Vec::new();
    for rule in scanner.rules() {
        let started = Instant::now();
        let count = rule.regex.find_iter(text.as_bytes()).count();
        times.push((started.elapsed().as_secs_f64(), rule.id.clone(), count));
    }
    times.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (seconds, id, count) in times.iter().take(25) {
        println!("{:>9.1} MB/s {id} ({count} matches)", mb / seconds);
    }
    let total: f64 = times.iter().map(|t| t.0).sum();
    println!("all rules, find_iter: {:.1} MB/s", mb / total);
    let started = Instant::now();
    let candidates = scanner.scan_candidates(&text).len();
    println!(
        "candidates: {:.1} MB/s, {candidates}",
        mb / started.elapsed().as_secs_f64()
    );
    let chunks: Vec<&str> = text
        .as_bytes()
        .chunks(64 << 10)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    let started = Instant::now();
    let mut chunk_bytes = 0usize;
    for _ in 0..5 {
        for chunk in &chunks {
            scanner.scan(chunk);
            chunk_bytes += chunk.len();
        }
    }
    println!(
        "64 KiB chunks: {:.1} MB/s",
        chunk_bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let findings = scanner.scan(&text).len();
    println!(
        "scan of the whole file: {:.1} MB/s, {findings} findings",
        mb / started.elapsed().as_secs_f64()
    );
}
