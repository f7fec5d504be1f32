//! A minimal Server-Sent Events reader over a reqwest response, enough to
//! check the orchestrator's `GET /runs/{id}/events` stream.

use anyhow::{Context as _, ensure};
use futures::StreamExt;
use synod_types::RunEvent;

use crate::events::decode_cloud_event;
use crate::within;

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `id:` field.
    pub id: Option<String>,
    /// The `event:` field.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental SSE parser: feed bytes, take complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> anyhow::Result<Vec<SseEvent>> {
        self.buffer
            .push_str(std::str::from_utf8(chunk).context("SSE stream is not UTF-8")?);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches('\n').trim_end_matches('\r');
            if line.is_empty() {
                if self.has_data {
                    events.push(std::mem::take(&mut self.current));
                }
                self.current = SseEvent::default();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue; // comment (keep-alive)
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.current.id = Some(value.to_owned()),
                "event" => self.current.event = Some(value.to_owned()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        Ok(events)
    }
}

/// Decodes an SSE event carrying a run event, checking that its `id` is the
/// sequence number and its `event` the CloudEvents type.
pub fn decode(event: &SseEvent) -> anyhow::Result<RunEvent> {
    let run_event = decode_cloud_event(&event.data)?;
    ensure!(
        event.id.as_deref() == Some(run_event.seq.to_string().as_str())
            && event.event.as_deref() == Some(run_event.kind.cloud_event_type()),
        "SSE id {:?} / event {:?} disagree with the CloudEvent {}",
        event.id,
        event.event,
        event.data
    );
    Ok(run_event)
}

/// Reads `response` as SSE until the server ends the stream, or until
/// `limit` events arrived (then the connection is dropped). Returns the
/// decoded run events.
pub async fn read_events(
    response: reqwest::Response,
    limit: Option<usize>,
) -> anyhow::Result<Vec<RunEvent>> {
    ensure!(
        response.status() == reqwest::StatusCode::OK,
        "SSE request failed with {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        content_type.starts_with("text/event-stream"),
        "content type is `{content_type}`, not text/event-stream"
    );
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    within("the SSE stream", async {
        while let Some(chunk) = body.next().await {
            for event in parser.feed(&chunk.context("reading the SSE body")?)? {
                events.push(decode(&event)?);
                if limit.is_some_and(|limit| events.len() >= limit) {
                    return Ok(());
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    })
    .await??;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_chunks_comments_and_multiline_data() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .feed(b": keep-alive\n\nid: 1\nevent: a\nda")
                .unwrap()
                .is_empty()
        );
        let events = parser.feed(b"ta: x\r\ndata:y\n\nid: 2\n").unwrap();
        assert_eq!(
            events,
            vec![SseEvent {
                id: Some("1".into()),
                event: Some("a".into()),
                data: "x\ny".into()
            }]
        );
        let events = parser.feed(b"data: z\n\n").unwrap();
        assert_eq!(events[0].id.as_deref(), Some("2"));
        assert_eq!(events[0].data, "z");
    }
}
