//! Logging setup: tracing to stderr, as text or JSON, filtered by `--log-level` or `RUST_LOG`,
//! written off the request path.
//!
//! A log line (the access log's one per request above all) is formatted where it happens and
//! handed to a bounded queue; one thread writes the queue to stderr through a buffer, flushing
//! whenever the queue runs empty. Writing to stderr directly would make every response wait
//! for that write, and for whatever is slow behind it (a container runtime's log pipe, a full
//! disk): with the access log on, small cache hits ran at 0.62 x nginx's rate instead of 0.83 x.
//! When the queue is full the line is dropped and counted (`gateway_log_lines_dropped_total`),
//! never waited for. [`LogGuard::flush`] writes what is queued before the process exits.
//!
//! The access log's line, one per request, is not even formatted on the request path: the
//! request hands its fields to the queue ([`access`]) and the writer formats them, in the same
//! shape as tracing's text or JSON lines. tracing's general formatter (a visitor per field, the
//! span's fields, the timestamp) cost 2 to 3 µs a request there.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::LogFormat;

/// Lines the queue holds at most (a few MiB of lines at worst); beyond, lines are dropped.
pub const QUEUE_LINES: usize = 8192;

/// How long [`LogGuard::flush`] waits for the queue to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// How long the writer sleeps when the queue is empty. It polls instead of waiting on the
/// queue, so that a request queuing its line never has to wake it (a futex call and a context
/// switch per line, most of the access log's cost under load); a line waits this long at most.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Lines dropped because the queue was full, since start.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped because the writer could not keep up, since the process started.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Installs the global subscriber. `level` wins over `RUST_LOG`; the default is `info`.
///
/// # Errors
/// When the filter does not parse (reported against `--log-level`).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<LogGuard, crate::error::ConfigError> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l)
            .map_err(|e| crate::error::ConfigError::new("--log-level", format!("{l:?} is not a log filter: {e}")))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let ansi = std::io::stderr().is_terminal();
    let (queue, guard) = Queue::start(QUEUE_LINES, format, ansi);
    let _ = ACCESS.set(queue.0.clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(queue)
        // Colour codes only for a terminal, never in files or container logs.
        .with_ansi(ansi);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(guard)
}

/// The log writer thread's nice value (0 is the workers'; 10 gives it about a tenth of a
/// contended core's share, ample for formatting 100,000 lines a second).
const WRITER_NICE: i32 = 10;

/// The queue the access log uses, once [`init`] has run.
static ACCESS: OnceLock<SyncSender<Message>> = OnceLock::new();

/// The fields of one request's access-log line.
#[derive(Debug)]
pub struct AccessLine {
    /// When the response ended.
    pub at: SystemTime,
    /// The request's id (`X-Request-Id`).
    pub request_id: Box<str>,
    /// Method; `None` for a request the HTTP layer could not parse (`-` in the line).
    pub method: Option<http::Method>,
    /// The request target's path.
    ///
    /// Owned, not the request's `Uri`: that shares hyper's read buffer, and a line waiting in
    /// the queue would keep it shared, so that hyper would allocate a new buffer for the
    /// connection's next request (measured: a fifth more CPU per small hit).
    pub path: Box<str>,
    /// Status code.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// From the request to the end of the response, in milliseconds.
    pub duration_ms: f64,
    /// `X-Cache`, if any (`-` in the line).
    pub cache: Option<http::HeaderValue>,
    /// How the body ended: complete, aborted, error.
    pub outcome: &'static str,
}

/// Logs one request (target `gateway::access`, level INFO, as filtered by `--log-level`): the
/// writer thread formats it. Without [`init`] (the tests' in-process servers), through tracing.
pub fn access(line: AccessLine) {
    if !tracing::enabled!(target: "gateway::access", tracing::Level::INFO) {
        return;
    }
    let Some(queue) = ACCESS.get() else {
        tracing::info!(
            target: "gateway::access",
            request_id = &*line.request_id,
            method = line.method.as_ref().map_or("-", http::Method::as_str),
            path = &*line.path,
            status = line.status,
            bytes = line.bytes,
            duration_ms = line.duration_ms,
            cache = cache_of(&line),
            outcome = line.outcome,
            "request"
        );
        return;
    };
    if let Err(TrySendError::Full(_)) = queue.try_send(Message::Access(Box::new(line))) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the writer thread receives.
enum Message {
    Line(Vec<u8>),
    /// An access-log line to format.
    Access(Box<AccessLine>),
    /// Write everything before this, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The sending side of the queue, handed to tracing as its writer.
struct Queue(SyncSender<Message>);

impl Queue {
    /// The queue and its writer thread.
    fn start(lines: usize, format: LogFormat, ansi: bool) -> (Self, LogGuard) {
        let (tx, rx) = std::sync::mpsc::sync_channel(lines);
        let writer = std::thread::Builder::new().name("log-writer".into()).spawn(move || {
            // Behind the workers when the cores are busy: a line waits in the queue (or is
            // dropped and counted when it is full), a response does not wait for a line.
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), WRITER_NICE);
            write_queue(&rx, &mut std::io::stderr(), format, ansi)
        });
        if let Err(e) = &writer {
            eprintln!("warning: cannot start the log writer thread ({e}); log lines are dropped");
        }
        (Self(tx.clone()), LogGuard(tx))
    }
}

/// Writes the queue's lines to `out`, flushing when the queue runs empty; ends when every
/// sender is gone.
fn write_queue(rx: &Receiver<Message>, out: &mut impl Write, format: LogFormat, ansi: bool) {
    use std::sync::mpsc::TryRecvError;
    let mut buffered = std::io::BufWriter::with_capacity(64 << 10, out);
    let (mut access, mut scratch) = (AccessFormat::new(format, ansi), Vec::with_capacity(512));
    loop {
        match rx.try_recv() {
            Ok(Message::Line(line)) => {
                let _ = buffered.write_all(&line);
            }
            Ok(Message::Access(line)) => {
                scratch.clear();
                access.write(&mut scratch, &line);
                let _ = buffered.write_all(&scratch);
            }
            Ok(Message::Flush(done)) => {
                let _ = buffered.flush();
                let _ = done.send(());
            }
            Err(TryRecvError::Empty) => {
                let _ = buffered.flush();
                std::thread::sleep(IDLE_POLL);
            }
            Err(TryRecvError::Disconnected) => break,
        }
    }
    let _ = buffered.flush();
}

impl<'a> MakeWriter<'a> for Queue {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            buf: Vec::new(),
            queue: &self.0,
        }
    }
}

/// One event's line, queued when tracing is done writing it.
pub struct Line<'a> {
    buf: Vec<u8>,
    queue: &'a SyncSender<Message>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.queue.try_send(Message::Line(std::mem::take(&mut self.buf))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
            // No writer thread: write it here rather than lose it.
            Err(TrySendError::Disconnected(Message::Line(line))) => {
                let _ = std::io::stderr().write_all(&line);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Keeps the writer reachable so that what is queued can be written before the process exits.
#[derive(Debug)]
pub struct LogGuard(SyncSender<Message>);

impl LogGuard {
    /// Writes every line queued so far (waits at most two seconds for a stuck stderr).
    pub fn flush(&self) {
        let (done, written) = std::sync::mpsc::channel();
        if self.0.send(Message::Flush(done)).is_ok() {
            let _ = written.recv_timeout(FLUSH_WAIT);
        }
    }
}

/// The line's `X-Cache`, `-` without one.
fn cache_of(line: &AccessLine) -> &str {
    line.cache.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
}

/// [`AccessFormat::write`] into a string.
#[cfg(test)]
fn format_access(line: &AccessLine, format: LogFormat, ansi: bool) -> String {
    let mut out = Vec::new();
    AccessFormat::new(format, ansi).write(&mut out, line);
    String::from_utf8(out).unwrap()
}

/// Writes access lines as tracing's formatter writes an INFO event of target `gateway::access`
/// in the `request` span: JSON with the event's fields flattened, or text.
///
/// Written by hand into one buffer, without `fmt`'s machinery where it can: the writer thread
/// shares the machine's cores with the workers, so a line's cost is taken from the requests.
struct AccessFormat {
    format: LogFormat,
    ansi: bool,
    /// The second `date` was written for, and its `2026-12-06T16:26:45.` prefix.
    second: u64,
    date: Vec<u8>,
}

impl AccessFormat {
    fn new(format: LogFormat, ansi: bool) -> Self {
        Self {
            format,
            ansi,
            second: u64::MAX,
            date: Vec::new(),
        }
    }

    fn write(&mut self, out: &mut Vec<u8>, line: &AccessLine) {
        let since = line.at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        if since.as_secs() != self.second {
            self.second = since.as_secs();
            self.date = rfc3339_micros(line.at).as_bytes()[..20].to_vec();
        }
        let request_id = line.request_id.as_bytes();
        let method = line.method.as_ref().map_or("-", http::Method::as_str);
        let (path, cache) = (&*line.path, cache_of(line));
        let timestamp = |out: &mut Vec<u8>| {
            out.extend_from_slice(&self.date);
            let micros = since.subsec_micros();
            let digits = [100_000, 10_000, 1000, 100, 10, 1].map(|d| b'0' + (micros / d % 10) as u8);
            out.extend_from_slice(&digits);
            out.push(b'Z');
        };
        match self.format {
            LogFormat::Json => {
                out.extend_from_slice(b"{\"timestamp\":\"");
                timestamp(out);
                out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\"");
                fields(out, true, line, method, path, cache);
                out.extend_from_slice(b",\"target\":\"gateway::access\",\"span\":");
                let span = |out: &mut Vec<u8>| {
                    out.extend_from_slice(b"{\"request_id\":");
                    quoted(out, request_id);
                    out.extend_from_slice(b",\"name\":\"request\"}");
                };
                span(out);
                out.extend_from_slice(b",\"spans\":[");
                span(out);
                out.extend_from_slice(b"]}\n");
            }
            LogFormat::Text => {
                let (level, dim, bold, reset): (&[u8], &[u8], &[u8], &[u8]) = if self.ansi {
                    (b"\x1b[32m INFO\x1b[0m", b"\x1b[2m", b"\x1b[1m", b"\x1b[0m")
                } else {
                    (b" INFO", b"", b"", b"")
                };
                out.extend_from_slice(dim);
                timestamp(out);
                for part in [reset, b" ", level, b" ", bold, b"request", reset, b"{request_id="] {
                    out.extend_from_slice(part);
                }
                quoted(out, request_id);
                for part in [
                    b"}",
                    dim,
                    b":",
                    reset,
                    b" ",
                    dim,
                    b"gateway::access",
                    reset,
                    dim,
                    b":",
                    reset,
                ] {
                    out.extend_from_slice(part);
                }
                out.extend_from_slice(b" request");
                fields(out, false, line, method, path, cache);
                out.push(b'\n');
            }
        }
    }
}

/// The event's fields, as JSON members (`,"status":200`) or tracing's text (` status=200`; the
/// method is not quoted there, as tracing writes a `Display` field).
fn fields(out: &mut Vec<u8>, json: bool, line: &AccessLine, method: &str, path: &str, cache: &str) {
    let key = |out: &mut Vec<u8>, name: &str| {
        if json {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        } else {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
        }
    };
    key(out, "method");
    if json {
        quoted(out, method.as_bytes());
    } else {
        out.extend_from_slice(method.as_bytes());
    }
    key(out, "path");
    quoted(out, path.as_bytes());
    key(out, "status");
    decimal(out, line.status.into());
    key(out, "bytes");
    decimal(out, line.bytes);
    key(out, "duration_ms");
    let _ = write!(out, "{}", line.duration_ms);
    key(out, "cache");
    quoted(out, cache.as_bytes());
    key(out, "outcome");
    quoted(out, line.outcome.as_bytes());
}

/// A string in double quotes, escaped as both `{:?}` and JSON escape it. Printable ASCII
/// without `"` or `\\` (request ids, methods, most paths) is copied as it is.
fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(s));
    }
}

/// An unsigned integer in decimal.
fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `2026-12-06T16:26:45.086601Z`, as tracing's default timer writes it.
fn rfc3339_micros(at: SystemTime) -> String {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_lines_instead_of_waiting() {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let queue = Queue(tx);
        let before = dropped_lines();
        for i in 0..5 {
            let mut line = queue.make_writer();
            writeln!(line, "line {i}").unwrap();
        }
        assert_eq!(dropped_lines() - before, 3);
        drop(queue);
        let mut out = Vec::new();
        write_queue(&rx, &mut out, LogFormat::Text, false);
        assert_eq!(String::from_utf8(out).unwrap(), "line 0\nline 1\n");
    }

    #[test]
    fn flush_writes_what_was_queued() {
        let (queue, guard) = {
            let (tx, rx) = std::sync::mpsc::sync_channel(16);
            let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = SharedSink(out.clone());
            std::thread::spawn(move || write_queue(&rx, &mut { sink }, LogFormat::Text, false));
            ((Queue(tx.clone()), out), LogGuard(tx))
        };
        for i in 0..3 {
            let mut line = queue.0.make_writer();
            writeln!(line, "line {i}").unwrap();
        }
        guard.flush();
        assert_eq!(queue.1.lock().unwrap().as_slice(), b"line 0\nline 1\nline 2\n");
    }

    #[test]
    fn access_lines_have_tracings_shape() {
        let line = AccessLine {
            at: SystemTime::UNIX_EPOCH + Duration::new(1_796_574_405, 86_601_000),
            request_id: "req-1".into(),
            method: Some(http::Method::GET),
            path: "/a.gif".into(),
            status: 200,
            bytes: 229,
            duration_ms: 0.5,
            cache: Some(http::HeaderValue::from_static("HIT")),
            outcome: "complete",
        };
        assert_eq!(rfc3339_micros(line.at), "2026-12-06T16:26:45.086601Z");
        assert_eq!(
            rfc3339_micros(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000Z"
        );
        let json: serde_json::Value = serde_json::from_str(&format_access(&line, LogFormat::Json, false)).unwrap();
        assert_eq!(json["target"], "gateway::access");
        assert_eq!(
            (json["status"].as_u64(), json["cache"].as_str()),
            (Some(200), Some("HIT"))
        );
        assert_eq!(json["span"]["request_id"], "req-1");
        assert_eq!(
            format_access(&line, LogFormat::Text, false),
            "2026-12-06T16:26:45.086601Z  INFO request{request_id=\"req-1\"}: gateway::access: request method=GET path=\"/a.gif\" status=200 bytes=229 duration_ms=0.5 cache=\"HIT\" outcome=\"complete\"\n"
        );
    }

    struct SharedSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SharedSink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
