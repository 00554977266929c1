//! One slice being fetched from the bucket into its temporary file, shared by every request
//! that needs it meanwhile: they read the file as it grows (each at its own pace; the fetch
//! goes at the bucket's), so the first bytes go out as soon as they arrive and a slow reader
//! slows nobody.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::watch;

use crate::error::StorageError;

/// Why a fetch produced no slice.
#[derive(Clone, Debug)]
pub(super) enum Failure {
    /// The bucket failed or refused (a changed ETag is `PreconditionFailed`).
    Backend(StorageError),
    /// The file could not be written.
    Disk(Arc<std::io::Error>),
    /// The body broke off or was longer than asked.
    Body(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Backend(e) => write!(f, "{e}"),
            Failure::Disk(e) => write!(f, "disk: {e}"),
            Failure::Body(why) => f.write_str(why),
        }
    }
}

/// How far a fetch is.
#[derive(Clone, Debug)]
pub(super) enum Progress {
    /// This many bytes are in the file.
    Writing(u64),
    /// Complete, with this many bytes.
    Done(u64),
    /// It stopped; what was written may not be read.
    Failed(Failure),
}

/// A slice being fetched.
#[derive(Debug)]
pub(super) struct SliceFetch {
    /// The temporary file, open for reading and writing (readers keep reading it by
    /// descriptor after it is renamed).
    file: Arc<File>,
    progress: watch::Sender<Progress>,
}

impl SliceFetch {
    /// A fetch writing into `file`.
    pub fn new(file: File) -> Self {
        Self {
            file: Arc::new(file),
            progress: watch::Sender::new(Progress::Writing(0)),
        }
    }

    /// Follows the fetch's progress.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Up to `max` bytes of the file from `at` (only below what [`Progress`] said was written).
    pub fn read_at(&self, at: u64, max: usize) -> std::io::Result<Bytes> {
        let mut buf = vec![0; max];
        let n = self.file.read_at(&mut buf, at)?;
        buf.truncate(n);
        Ok(buf.into())
    }

    /// Writes `body`, which must be exactly `expected` bytes, into the file, telling readers
    /// as it goes; returns the length and CRC-32 written.
    pub async fn write_from(&self, body: SdkBody, expected: u64) -> Result<(u64, u32), Failure> {
        let mut body = body;
        let mut written = 0u64;
        let mut crc = crc32fast::Hasher::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::Body(format!("the slice broke off after {written} bytes: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if written + data.len() as u64 > expected {
                return Err(Failure::Body(format!(
                    "the backend sent more than the {expected} bytes asked"
                )));
            }
            self.file
                .write_all_at(&data, written)
                .map_err(|e| Failure::Disk(Arc::new(e)))?;
            crc.update(&data);
            written += data.len() as u64;
            self.progress.send_replace(Progress::Writing(written));
        }
        if written != expected {
            return Err(Failure::Body(format!(
                "the slice ended after {written} of {expected} bytes"
            )));
        }
        Ok((written, crc.finalize()))
    }

    /// Ends the fetch.
    pub fn finish(&self, end: Progress) {
        self.progress.send_replace(end);
    }
}
