//! Cache hits without copying the object into the socket: entries kept in sealed in-memory
//! files, sent with `sendfile(2)`.
//!
//! Writing a cached object with `write`/`writev` makes the kernel copy every byte from the
//! process's memory into socket buffers; under load that copy (`_copy_from_iter`) was most of
//! a hit's CPU. A disk-backed nginx avoids it with `sendfile`, which hands page-cache pages to
//! the socket. Here, a large cache entry lives in a `memfd` (an anonymous file in memory): its
//! bytes are written once, the file is **sealed** (no write, shrink or grow, ever again) and
//! mapped read-only, and the entry's `Bytes` is that mapping. A fill writes a large object
//! straight into its file ([`Unsealed`]), so it is copied once, as on the heap. Everything that reads the entry
//! (ranges, HTTP/2, HEAD) sees ordinary bytes. The connection's I/O type, [`SendfileStream`],
//! recognises a buffer that lies inside such a mapping when hyper writes it, and sends it with
//! `sendfile` from the file at the matching offset instead: the same bytes, without the copy.
//!
//! Bounds: each such entry holds one file descriptor. At start-up [`prepare`] raises the
//! soft open-file limit to the hard one and allows a quarter of it for entries; beyond that,
//! and for objects under [`MIN_BYTES`] (whose copy is cheap), entries stay on the heap.
//!
//! # Safety
//! This is the crate's only `unsafe`: mapping files (`memmap2::Mmap::map`), which is unsafe
//! because a mapped file changed by someone else would change memory that Rust treats as
//! immutable. The disk tier's slices are mapped too ([`map_file`], with its own argument). Here nobody can: the file is created by this process with no name in any file
//! system, written through its descriptor before mapping, then sealed with `F_SEAL_WRITE`,
//! `F_SEAL_SHRINK`, `F_SEAL_GROW` and `F_SEAL_SEAL` (the kernel refuses every later write,
//! truncation or unsealing, by this process or any other that might get the descriptor), and
//! only then mapped, read-only. The mapping lives as long as the `Bytes` that own it.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use rustix::fs::{MemfdFlags, SealFlags};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Objects smaller than this stay on the heap: copying them costs less than a descriptor.
pub const MIN_BYTES: usize = 64 << 10;

/// Sealed mappings by start address: their length and file.
type Regions = BTreeMap<usize, (usize, Arc<OwnedFd>)>;
static REGIONS: LazyLock<RwLock<Regions>> = LazyLock::new(RwLock::default);

/// How many sealed entries may exist at once (set by [`prepare`]).
static MAX_REGIONS: AtomicUsize = AtomicUsize::new(256);

/// Raises the soft open-file limit to the hard one and sizes the number of sealed entries to a
/// quarter of it, so that client connections always keep most descriptors. Returns that number.
pub fn prepare() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    let max = usize::try_from(limit.current.unwrap_or(1 << 20) / 4)
        .unwrap_or(usize::MAX)
        .min(1 << 16);
    MAX_REGIONS.store(max, Ordering::Relaxed);
    max
}

/// Sealed entries now (mapped disk-tier slices are not counted).
static SEALED: AtomicUsize = AtomicUsize::new(0);

/// How many sealed entries exist now.
pub fn regions() -> usize {
    SEALED.load(Ordering::Relaxed)
}

/// The owner of one registered mapping, behind its `Bytes`; unregisters it when dropped.
struct Region {
    map: memmap2::Mmap,
    /// A sealed memory file (counted in [`regions`]), or a disk-tier slice.
    sealed: bool,
}

impl AsRef<[u8]> for Region {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let start = self.map.as_ptr() as usize;
        REGIONS.write().unwrap_or_else(|p| p.into_inner()).remove(&start);
        if self.sealed {
            SEALED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An in-memory file being written, sealed and mapped when complete: a large cache entry as
/// it fills, so its bytes are copied once, into the file.
#[derive(Debug)]
pub struct Unsealed {
    file: File,
    len: usize,
}

impl Unsealed {
    /// A new file for an object of `capacity` bytes; `None` (keep it on the heap) when it is
    /// small, the entry limit is reached, or the system refuses.
    pub fn create(capacity: usize) -> Option<Self> {
        if capacity < MIN_BYTES || regions() >= MAX_REGIONS.load(Ordering::Relaxed) {
            return None;
        }
        let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        match rustix::fs::memfd_create("gateway-cache", flags) {
            Ok(fd) => Some(Self {
                file: File::from(fd),
                len: 0,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "cache entry kept on the heap: no memory file");
                None
            }
        }
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// The system refused the memory.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.len += data.len();
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// A copy of the bytes written so far (for a reader that joins mid-way).
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn copy(&self) -> io::Result<Bytes> {
        let mut buf = vec![0; self.len];
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut buf, 0)?;
        Ok(buf.into())
    }

    /// Seals the file and maps it: `Bytes` that [`SendfileStream`] sends without copying. When
    /// the system refuses to seal or map it, the bytes are read back onto the heap instead.
    ///
    /// # Errors
    /// Neither worked.
    pub fn seal(self) -> io::Result<Bytes> {
        let map = match self.seal_and_map() {
            Ok(map) => map,
            Err(e) => {
                tracing::debug!(error = %e, "cache entry moved to the heap: the memory file cannot be sealed or mapped");
                return self.copy();
            }
        };
        Ok(register(map, OwnedFd::from(self.file), true))
    }

    fn seal_and_map(&self) -> io::Result<memmap2::Mmap> {
        rustix::fs::fcntl_add_seals(
            &self.file,
            SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
        )?;
        // SAFETY: the file was created by `create`, has no name, and is now sealed against
        // every write, shrink and grow, and against removing those seals: its contents cannot
        // change while mapped (see the module's safety section).
        unsafe { memmap2::Mmap::map(&self.file) }
    }
}

/// Registers `map` of `fd`, so that [`SendfileStream`] sends its bytes from the file.
fn register(map: memmap2::Mmap, fd: OwnedFd, sealed: bool) -> Bytes {
    if sealed {
        SEALED.fetch_add(1, Ordering::Relaxed);
    }
    REGIONS
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(map.as_ptr() as usize, (map.len(), Arc::new(fd)));
    Bytes::from_owner(Region { map, sealed })
}

/// Maps a complete disk-tier slice read-only, registered like a sealed entry so that hits go
/// from the file to the socket with `sendfile`.
///
/// # Errors
/// The file cannot be mapped (it is empty, or the system refuses).
pub fn map_file(file: File) -> io::Result<Bytes> {
    // SAFETY: a disk-tier slice is a file the gateway wrote in full, checked for length (and
    // for its checksum when read back after a restart), renamed into place, and never written,
    // truncated or renamed over again: eviction and purge only unlink it, which leaves the
    // mapped pages intact. The tier's directory is the gateway's own (see `cache::disk`);
    // nothing else changes files in it while it runs.
    let map = unsafe { memmap2::Mmap::map(&file) }?;
    Ok(register(map, OwnedFd::from(file), false))
}

/// The file and offset of `buf` when it lies wholly inside a sealed mapping.
fn lookup(buf: &[u8]) -> Option<(Arc<OwnedFd>, u64)> {
    let at = buf.as_ptr() as usize;
    let regions = REGIONS.read().unwrap_or_else(|p| p.into_inner());
    let (&start, (len, fd)) = regions.range(..=at).next_back()?;
    (at + buf.len() <= start + len).then(|| (fd.clone(), (at - start) as u64))
}

/// A client connection that sends buffers lying in sealed mappings with `sendfile`.
#[derive(Debug)]
pub struct SendfileStream {
    tcp: TcpStream,
}

impl SendfileStream {
    /// Wraps an accepted connection.
    pub fn new(tcp: TcpStream) -> Self {
        Self { tcp }
    }

    fn poll_sendfile(&self, cx: &mut Context<'_>, fd: &OwnedFd, offset: u64, len: usize) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let mut at = offset;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.tcp, fd, Some(&mut at), len).map_err(io::Error::from)
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match lookup(buf) {
            Some((fd, offset)) => self.poll_sendfile(cx, &fd, offset, buf.len()),
            None => Pin::new(&mut self.tcp).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Plain buffers before the first mapped one go in one writev; a mapped one at the front
        // goes with sendfile. Either way the caller learns how much was written and calls again.
        let mapped = bufs
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .find_map(|(i, b)| Some((i, lookup(b)?)));
        match mapped {
            None => Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs),
            Some((0, (fd, offset))) => self.poll_sendfile(cx, &fd, offset, bufs[0].len()),
            Some((i, _)) => Pin::new(&mut self.tcp).poll_write_vectored(cx, &bufs[..i]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `data` sealed the way a fill seals an entry.
    fn seal(data: &[u8]) -> Option<Bytes> {
        let mut file = Unsealed::create(data.len())?;
        file.write(data).ok()?;
        file.seal().ok()
    }

    #[test]
    fn small_objects_stay_on_the_heap() {
        assert!(seal(&[7; 100]).is_none());
    }

    #[test]
    fn sealed_bytes_read_as_written_and_unregister_when_dropped() {
        let data: Vec<u8> = (0..MIN_BYTES * 2).map(|i| (i % 251) as u8).collect();
        let bytes = seal(&data).expect("memfd");
        assert_eq!(&bytes[..], &data[..]);
        let slice = bytes.slice(1000..2000);
        assert_eq!(lookup(&slice).map(|(_, off)| off), Some(1000));
        drop(slice);
        let start = bytes.as_ptr() as usize;
        drop(bytes);
        assert!(!REGIONS.read().unwrap().contains_key(&start));
    }

    #[tokio::test]
    async fn a_sealed_buffer_goes_out_whole_through_sendfile() {
        let data: Vec<u8> = (0..MIN_BYTES * 4).map(|i| (i % 253) as u8).collect();
        let bytes = seal(&data).expect("memfd");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut out = SendfileStream::new(TcpStream::connect(addr).await.unwrap());
        let head = b"HEAD:";
        let mut written = 0;
        while written < head.len() {
            written += out.write(&head[written..]).await.unwrap();
        }
        let mut rest: &[u8] = &bytes[10..];
        while !rest.is_empty() {
            let bufs = [io::IoSlice::new(rest)];
            let n = out.write_vectored(&bufs).await.unwrap();
            rest = &rest[n..];
        }
        out.shutdown().await.unwrap();
        let got = reader.await.unwrap();
        assert_eq!(&got[..5], head);
        assert_eq!(&got[5..], &data[10..]);
    }
}
