//! Bounded table of failures: counts by (request, status or transport class, message).
//!
//! Why bounded: transport error messages often embed ports, addresses or ids, so a failing target can produce a
//! new message for every request. Locust keeps each one forever (locust#816) and its memory grows with the run.
//! Here each request keeps at most [`MAX_MESSAGES_PER_REQUEST`] distinct messages (first seen wins); later new
//! messages are counted under [`OVERFLOW_MESSAGE`] for their kind, and every message is cut to
//! [`MAX_MESSAGE_LEN`] bytes — so the table's size depends on the scenario, never on the traffic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ErrorClass, StatusClass};

/// Distinct messages kept per request (method + name); more are counted under [`OVERFLOW_MESSAGE`].
pub const MAX_MESSAGES_PER_REQUEST: usize = 100;
/// Messages longer than this many bytes are truncated (at a character boundary).
pub const MAX_MESSAGE_LEN: usize = 300;
/// Message under which failures beyond [`MAX_MESSAGES_PER_REQUEST`] distinct messages are counted.
pub const OVERFLOW_MESSAGE: &str = "other messages (distinct-message limit reached)";

/// What failed: an HTTP status the scenario did not accept, or a transport error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A response with this status, counted as a failure.
    Status(u16),
    /// No complete response.
    Transport(ErrorClass),
}

impl ErrorKind {
    /// The status class this failure belongs to.
    pub fn class(self) -> StatusClass {
        match self {
            Self::Status(status) => StatusClass::of_status(status),
            Self::Transport(class) => StatusClass::of_error(class),
        }
    }

    /// True for a 429 response (excluded from the users' error rate).
    pub fn is_429(self) -> bool {
        self == Self::Status(429)
    }
}

/// The message recorded for a response whose status the scenario did not accept.
pub fn status_failure_message(status: u16) -> String {
    format!("unexpected status {status}")
}

/// One line of the error table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRow {
    /// HTTP method of the request.
    pub method: String,
    /// Request name.
    pub name: String,
    /// Status or transport class.
    pub kind: ErrorKind,
    /// First-seen message text (or [`OVERFLOW_MESSAGE`]).
    pub message: String,
    /// How many failures had this (request, kind, message).
    pub occurrences: u64,
    /// Unix seconds of the first occurrence.
    pub first_seen: u64,
    /// Unix seconds of the last occurrence.
    pub last_seen: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    occurrences: u64,
    first_seen: u64,
    last_seen: u64,
}

impl Seen {
    fn absorb(&mut self, other: Seen) {
        self.occurrences += other.occurrences;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct RequestErrors {
    method: String,
    name: String,
    distinct: usize,
    by_kind: BTreeMap<ErrorKind, BTreeMap<String, Seen>>,
}

impl RequestErrors {
    fn add(&mut self, kind: ErrorKind, message: &str, seen: Seen) {
        let messages = self.by_kind.entry(kind).or_default();
        let message = truncate(message);
        if let Some(entry) = messages.get_mut(message) {
            entry.absorb(seen);
            return;
        }
        let key = if self.distinct < MAX_MESSAGES_PER_REQUEST {
            self.distinct += 1;
            message
        } else {
            OVERFLOW_MESSAGE
        };
        match messages.get_mut(key) {
            Some(entry) => entry.absorb(seen),
            None => {
                messages.insert(key.to_owned(), seen);
            }
        }
    }
}

fn truncate(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE_LEN {
        return message;
    }
    let mut end = MAX_MESSAGE_LEN;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// Failures by (method, name, kind, message), bounded as described in the module docs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorTable {
    requests: Vec<RequestErrors>,
}

impl ErrorTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one failure seen at `unix_secs`.
    pub fn record(
        &mut self,
        method: &str,
        name: &str,
        kind: ErrorKind,
        message: &str,
        unix_secs: u64,
    ) {
        let seen = Seen {
            occurrences: 1,
            first_seen: unix_secs,
            last_seen: unix_secs,
        };
        self.request_mut(method, name).add(kind, message, seen);
    }

    /// Adds every row of `other` (the bounds still apply).
    pub fn merge(&mut self, other: &ErrorTable) {
        for row in other.rows() {
            self.merge_row(&row);
        }
    }

    /// Adds one row (e.g. read back from a serialized delta).
    pub fn merge_row(&mut self, row: &ErrorRow) {
        let seen = Seen {
            occurrences: row.occurrences,
            first_seen: row.first_seen,
            last_seen: row.last_seen,
        };
        self.request_mut(&row.method, &row.name)
            .add(row.kind, &row.message, seen);
    }

    /// True when no failure was recorded.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Every row, sorted by method, name, kind, message.
    pub fn rows(&self) -> Vec<ErrorRow> {
        let mut rows: Vec<ErrorRow> = self
            .requests
            .iter()
            .flat_map(|request| {
                request.by_kind.iter().flat_map(move |(kind, messages)| {
                    messages.iter().map(move |(message, seen)| ErrorRow {
                        method: request.method.clone(),
                        name: request.name.clone(),
                        kind: *kind,
                        message: message.clone(),
                        occurrences: seen.occurrences,
                        first_seen: seen.first_seen,
                        last_seen: seen.last_seen,
                    })
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.method, &a.name, a.kind, &a.message).cmp(&(&b.method, &b.name, b.kind, &b.message))
        });
        rows
    }

    /// Total failures recorded.
    pub fn total(&self) -> u64 {
        self.requests
            .iter()
            .flat_map(|r| r.by_kind.values().flat_map(|m| m.values()))
            .map(|seen| seen.occurrences)
            .sum()
    }

    fn request_mut(&mut self, method: &str, name: &str) -> &mut RequestErrors {
        let index = match self
            .requests
            .iter()
            .position(|r| r.name == name && r.method == method)
        {
            Some(index) => index,
            None => {
                self.requests.push(RequestErrors {
                    method: method.to_owned(),
                    name: name.to_owned(),
                    ..RequestErrors::default()
                });
                self.requests.len() - 1
            }
        };
        &mut self.requests[index]
    }
}

impl Serialize for ErrorTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.rows().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ErrorTable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let rows = Vec::<ErrorRow>::deserialize(deserializer)?;
        let mut table = ErrorTable::new();
        for row in &rows {
            table.merge_row(row);
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: ErrorKind = ErrorKind::Transport(ErrorClass::Timeout);

    #[test]
    fn same_message_is_counted_with_first_and_last_seen() {
        let mut table = ErrorTable::new();
        table.record("GET", "/a", TIMEOUT, "timed out", 10);
        table.record("GET", "/a", TIMEOUT, "timed out", 12);
        table.record(
            "GET",
            "/a",
            ErrorKind::Status(500),
            "unexpected status 500",
            11,
        );
        let rows = table.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].kind, ErrorKind::Status(500));
        assert_eq!(
            (rows[1].occurrences, rows[1].first_seen, rows[1].last_seen),
            (2, 10, 12)
        );
        assert_eq!(table.total(), 3);
    }

    #[test]
    fn a_flood_of_distinct_messages_stays_bounded_and_fully_counted() {
        let mut table = ErrorTable::new();
        for i in 0..10_000 {
            table.record(
                "POST",
                "/chat",
                TIMEOUT,
                &format!("timeout after connect to port {i}"),
                1,
            );
        }
        let rows = table.rows();
        assert_eq!(rows.len(), MAX_MESSAGES_PER_REQUEST + 1);
        assert_eq!(table.total(), 10_000);
        let overflow = rows.iter().find(|r| r.message == OVERFLOW_MESSAGE).unwrap();
        assert_eq!(
            overflow.occurrences,
            10_000 - MAX_MESSAGES_PER_REQUEST as u64
        );
        // Known messages keep counting after the limit is reached.
        table.record(
            "POST",
            "/chat",
            TIMEOUT,
            "timeout after connect to port 0",
            2,
        );
        assert_eq!(
            table
                .rows()
                .iter()
                .find(|r| r.message.ends_with("port 0"))
                .unwrap()
                .occurrences,
            2
        );
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let mut table = ErrorTable::new();
        let long = "é".repeat(MAX_MESSAGE_LEN);
        table.record("GET", "/a", TIMEOUT, &long, 1);
        let message = &table.rows()[0].message;
        assert!(message.len() <= MAX_MESSAGE_LEN && message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn merge_and_serde_round_trip_preserve_rows() {
        let mut a = ErrorTable::new();
        a.record("GET", "/a", TIMEOUT, "x", 5);
        let mut b = ErrorTable::new();
        b.record("GET", "/a", TIMEOUT, "x", 3);
        b.record(
            "GET",
            "/b",
            ErrorKind::Status(429),
            "unexpected status 429",
            4,
        );
        a.merge(&b);
        let rows = a.rows();
        assert_eq!(
            (rows[0].occurrences, rows[0].first_seen, rows[0].last_seen),
            (2, 3, 5)
        );
        let back: ErrorTable = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.rows(), rows);
        assert!(rows[1].kind.is_429());
    }
}
