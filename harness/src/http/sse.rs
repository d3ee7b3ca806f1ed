//! Incremental scanner of an SSE response body: counts `data:` events and spots the terminal event.
//!
//! Only line *prefixes* are kept (enough to recognise `data:`, `[DONE]` and `event: message_stop`), so memory is
//! bounded whatever the size of an event.

/// Longest line prefix kept while scanning.
const PREFIX: usize = 32;

/// What one body chunk contained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStep {
    /// Data events (tokens) completed in this chunk, excluding the terminal `[DONE]`.
    pub data_events: u32,
    /// The terminal event was seen (`data: [DONE]` or `event: message_stop`).
    pub finished: bool,
}

/// Line-oriented scanner across chunk boundaries.
#[derive(Debug, Default)]
pub struct SseScanner {
    line: Vec<u8>,
    line_len: usize,
    finished: bool,
}

impl SseScanner {
    /// Feeds one body chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> ScanStep {
        let mut step = ScanStep::default();
        for &b in chunk {
            if b == b'\n' {
                self.end_line(&mut step);
            } else if b != b'\r' {
                if self.line.len() < PREFIX {
                    self.line.push(b);
                }
                self.line_len += 1;
            }
        }
        step.finished = self.finished;
        step
    }

    /// Whether the terminal event has been seen.
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn end_line(&mut self, step: &mut ScanStep) {
        let line = std::mem::take(&mut self.line);
        if let Some(data) = line.strip_prefix(b"data:") {
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" && self.line_len <= PREFIX {
                self.finished = true;
            } else {
                step.data_events += 1;
            }
        } else if line.starts_with(b"event:") {
            let name = line[6..].strip_prefix(b" ").unwrap_or(&line[6..]);
            if name == b"message_stop" {
                self.finished = true;
            }
        }
        self.line = line;
        self.line.clear();
        self.line_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_openai_and_anthropic_streams_in_any_chunking() {
        let openai = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"x\":1}\n\ndata: [DONE]\n\n";
        let anthropic =
            "event: message_start\ndata: {}\n\nevent: content_block_delta\ndata: {\"d\":1}\n\n\
                         event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let cut = "data: {\"a\":1}\r\n\r\ndata: {\"b\"";
        let cases = [
            (openai, 2, true),
            (anthropic, 3, true),
            (cut, 1, false),
            (": ping\n\n", 0, false),
        ];
        for (text, want_events, want_finished) in cases {
            for chunk_size in [1, 3, 7, 1000] {
                let mut s = SseScanner::default();
                let events: u32 = text
                    .as_bytes()
                    .chunks(chunk_size)
                    .map(|c| s.feed(c).data_events)
                    .sum();
                assert_eq!(
                    (events, s.finished()),
                    (want_events, want_finished),
                    "{text:?} / {chunk_size}"
                );
            }
        }
    }
}
