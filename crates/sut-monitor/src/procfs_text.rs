//! Parsers for the few `/proc` text files the monitor reads.
//!
//! Why hand-written rather than `procfs`'s structs: the monitor reads these files once per second for every
//! process of the watched tree, and only needs a handful of fields. Parsing just those fields keeps the monitor's
//! own cost well under its budget (< 0.5 % of a core at 1 Hz) and keeps the parsing pure and unit-testable.
//! I/O lives in [`crate::process_tree`].

/// The fields of `/proc/PID/stat` the monitor uses (see `proc(5)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Single-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent PID.
    pub ppid: u32,
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Number of threads.
    pub threads: u64,
    /// Start time since boot, in clock ticks (with the PID, identifies a process across PID reuse).
    pub start_ticks: u64,
    /// Virtual memory size in bytes.
    pub vsize_bytes: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

impl ProcStat {
    /// A zombie or dead process holds no memory or fds worth counting and has exited for our purposes.
    pub fn is_gone(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses one `/proc/PID/stat` line. `comm` may contain spaces and parentheses, so fields are counted from the
/// LAST `)`.
pub(crate) fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    // Field numbers below are proc(5)'s 1-based numbers; `rest` starts at field 3 (state).
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    let num = |n: usize| field(n)?.parse::<u64>().ok();
    Some(ProcStat {
        state: field(3)?.chars().next()?,
        ppid: u32::try_from(num(4)?).ok()?,
        cpu_ticks: num(14)? + num(15)?,
        threads: num(20)?,
        start_ticks: num(22)?,
        vsize_bytes: num(23)?,
        rss_pages: num(24)?,
    })
}

/// Extracts `RssAnon` from `/proc/PID/status`, in bytes. `None` when absent (kernel threads, zombies).
pub(crate) fn parse_rss_anon(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let mut parts = line["RssAnon:".len()..].split_ascii_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// Extracts the socket inode from an fd's link target, e.g. `socket:[12345]`.
pub(crate) fn socket_inode(link_target: &str) -> Option<u64> {
    link_target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// One row of `/proc/net/tcp` or `/proc/net/tcp6`: the socket's state code and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpRow {
    /// Kernel TCP state code (`01` ESTABLISHED ... `0A` LISTEN).
    pub state: u8,
    /// Socket inode (0 for sockets no longer owned by a file, e.g. TIME_WAIT).
    pub inode: u64,
}

/// Parses `/proc/net/tcp{,6}` (header line skipped; malformed rows ignored).
pub(crate) fn parse_tcp_table(text: &str) -> impl Iterator<Item = TcpRow> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let cols: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
        Some(TcpRow {
            state: u8::from_str_radix(cols.get(3)?, 16).ok()?,
            inode: cols.get(9)?.parse().ok()?,
        })
    })
}

/// Parses the first number of `/proc/uptime`, in seconds.
pub(crate) fn parse_uptime_secs(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str =
        "8668 (my (weird) proc) S 8666 8666 5382 0 -1 4194304 99 0 0 0 7 3 0 0 20 0 5 0 \
        50272 3133440 413 18446744073709551615 94790817538048 0 0";

    #[test]
    fn stat_fields_are_counted_from_the_last_paren() {
        let stat = parse_stat(STAT).expect("parses");
        assert_eq!(
            stat,
            ProcStat {
                state: 'S',
                ppid: 8666,
                cpu_ticks: 10,
                threads: 5,
                start_ticks: 50272,
                vsize_bytes: 3133440,
                rss_pages: 413
            }
        );
        assert!(!stat.is_gone());
    }

    #[test]
    fn stat_rejects_truncated_or_garbage_lines() {
        for line in ["", "1 (x)", "1 (x) S notanumber", &STAT[..60]] {
            assert_eq!(parse_stat(line), None, "{line:?}");
        }
    }

    #[test]
    fn zombie_and_dead_states_count_as_gone() {
        for (state, gone) in [('Z', true), ('X', true), ('R', false), ('D', false)] {
            let line = STAT.replacen(") S ", &format!(") {state} "), 1);
            assert_eq!(
                parse_stat(&line).map(|s| s.is_gone()),
                Some(gone),
                "{state}"
            );
        }
    }

    #[test]
    fn rss_anon_is_read_in_bytes() {
        let cases = [
            (
                "Name:\tx\nVmRSS:\t  100 kB\nRssAnon:\t    2048 kB\n",
                Some(2048 * 1024),
            ),
            ("Name:\tkthreadd\n", None),
            ("RssAnon:\tlots kB\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rss_anon(text), want, "{text:?}");
        }
    }

    #[test]
    fn socket_inodes_are_recognised() {
        let cases = [
            ("socket:[648]", Some(648)),
            ("pipe:[648]", None),
            ("/dev/null", None),
            ("socket:[x]", None),
        ];
        for (link, want) in cases {
            assert_eq!(socket_inode(link), want, "{link}");
        }
    }

    #[test]
    fn tcp_table_rows_give_state_and_inode() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 648 1 0 100 0 0 10 0\n\
           1: 0100007F:ED46 0100007F:46A9 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0\n\
           garbage\n";
        let rows: Vec<TcpRow> = parse_tcp_table(text).collect();
        assert_eq!(
            rows,
            vec![
                TcpRow {
                    state: 0x0A,
                    inode: 648
                },
                TcpRow {
                    state: 0x06,
                    inode: 0
                }
            ]
        );
    }

    #[test]
    fn uptime_first_number() {
        assert_eq!(parse_uptime_secs("502.72 990.10\n"), Some(502.72));
        assert_eq!(parse_uptime_secs(""), None);
    }
}
