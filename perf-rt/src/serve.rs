//! A listener for `axum::serve` that sends the embedded assets' bytes to the socket
//! straight from the executable's page cache (`sendfile`), the way nginx serves files.
//!
//! ```ignore
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(perf_rt::serve::zero_copy(listener), app).await?;
//! ```
//!
//! # Why
//!
//! The assets that `perf-build` embeds are `&'static [u8]` in the binary's read-only data,
//! and the asset service hands them to hyper without a copy. hyper then writes them with
//! `writev`, and the kernel copies every byte into the socket buffer. Those bytes are
//! also pages of the executable file, already in the page cache: `sendfile` from the
//! executable at the right offset gives the socket those pages instead, as nginx does
//! for its files.
//!
//! That pays for large bodies only. `sendfile` takes a second system call, and the head
//! leaves in a packet of its own, which the client wakes up for; on loopback
//! (`bench/serve_zero_copy.py`) a 100 KiB body costs 15% less CPU per request through
//! `sendfile`, a 64 KiB or 32 KiB one 2-3% more, and an 18 KB one 17% more. Hence
//! [`DEFAULT_MIN_LEN`]: images, fonts and large bundles go through `sendfile`, the rest
//! through `writev` with the head.
//!
//! # How
//!
//! [`ZeroCopyStream`] wraps the accepted `TcpStream`. hyper writes a response as one
//! vectored write (its head, then the body's slices). When one of those slices is at
//! least [`DEFAULT_MIN_LEN`] bytes long (see [`zero_copy_with`]) and lies inside a
//! read-only `PT_LOAD` segment of the running executable, the slices before it go out
//! with one `sendmsg`, and that slice with `sendfile` from `/proc/self/exe` at its file
//! offset. Every other write is the plain `writev`. Accepted sockets get `TCP_NODELAY`:
//! otherwise Nagle's algorithm holds the body's last segment until the client
//! acknowledges the head (up to 40 ms when it delays its acknowledgements).
//!
//! Which memory qualifies is decided once, from the executable's own program headers
//! (only segments without `PF_W`: never the relocated, then write-protected `RELRO`
//! part; none at all when the executable has text relocations, which the loader writes
//! into read-only pages) and `/proc/self/maps` (only mappings of the same inode, and
//! not writable). The file is opened once, through `/proc/self/exe`, so replacing the
//! executable on disk while it runs (a new `cargo build`) changes nothing: the open
//! file is the one mapped.
//!
//! Off Linux, or when the executable cannot be read, the stream writes as `TcpStream`
//! does. [`stats`] counts what went through `sendfile`.
//!
//! TLS terminated in the process would need the bytes in user space; this listener is
//! for plain HTTP, behind a proxy or a load balancer that terminates TLS.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Bodies from this size up go through `sendfile` by default.
///
/// Below it, one `writev` of the head and the body costs less CPU than a `sendmsg` and a
/// `sendfile` (measured on loopback by `bench/serve_zero_copy.py`; "Zero-copy sends" in
/// `BENCHMARKS.md`). A network interface with segmentation offload may move the point:
/// [`zero_copy_with`] takes another.
pub const DEFAULT_MIN_LEN: usize = 64 * 1024;

static SENT_FILES: AtomicU64 = AtomicU64::new(0);
static SENT_BYTES: AtomicU64 = AtomicU64::new(0);

/// What the zero-copy path has sent since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// `sendfile` calls that sent at least one byte.
    pub calls: u64,
    /// Bytes sent by them.
    pub bytes: u64,
}

/// What the zero-copy path has sent since the process started, across every listener.
pub fn stats() -> Stats {
    Stats {
        calls: SENT_FILES.load(Ordering::Relaxed),
        bytes: SENT_BYTES.load(Ordering::Relaxed),
    }
}

/// Whether this process can send these bytes with `sendfile`: they lie in a read-only
/// segment of the running executable (an embedded asset, a `static` byte string) and
/// the platform has the call. Decided once for the process; cheap afterwards.
pub fn is_zero_copy(bytes: &[u8]) -> bool {
    image::locate(bytes).is_some()
}

/// A listener for `axum::serve` whose connections send large embedded bodies with
/// `sendfile`: [`zero_copy`] makes one from a bound `tokio::net::TcpListener`.
///
/// It is axum's [`TapIo`](axum::serve::TapIo) around a [`ZeroCopyAccept`], because axum
/// implements `Connected` generically for `TapIo` only: this way
/// `into_make_service_with_connect_info::<SocketAddr>()` works as on a `TcpListener`.
/// Further `tap_io` calls (to set `TCP_NODELAY`, say) keep that.
pub type ZeroCopyListener = axum::serve::TapIo<ZeroCopyAccept, fn(&mut ZeroCopyStream)>;

/// Wraps a bound listener: bodies of [`DEFAULT_MIN_LEN`] bytes and more that lie in the
/// executable's read-only data leave through `sendfile`.
pub fn zero_copy(listener: TcpListener) -> ZeroCopyListener {
    zero_copy_with(listener, DEFAULT_MIN_LEN)
}

/// [`zero_copy`] with another threshold: slices of at least `min_len` bytes go through
/// `sendfile`, smaller ones are written with the response head.
pub fn zero_copy_with(listener: TcpListener, min_len: usize) -> ZeroCopyListener {
    fn untouched(_: &mut ZeroCopyStream) {}
    // Decide which memory qualifies now, not on the first large response.
    image::warm();
    let accept = ZeroCopyAccept {
        inner: listener,
        min_len: min_len.max(1),
    };
    axum::serve::ListenerExt::tap_io(accept, untouched as fn(&mut ZeroCopyStream))
}

/// The listener inside a [`ZeroCopyListener`]: accepts from a `TcpListener` and wraps
/// each connection in a [`ZeroCopyStream`].
#[derive(Debug)]
pub struct ZeroCopyAccept {
    inner: TcpListener,
    min_len: usize,
}

impl axum::serve::Listener for ZeroCopyAccept {
    type Io = ZeroCopyStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        // Nagle's algorithm would hold the body's last partial segment until the client
        // acknowledges the head, which it may delay by 40 ms (measured: 1,800 req/s
        // instead of 55,000 on 100 KiB bodies). A socket that refuses the option still
        // serves.
        let _ = stream.set_nodelay(true);
        (ZeroCopyStream::new(stream, self.min_len), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection of a [`ZeroCopyListener`].
#[derive(Debug)]
pub struct ZeroCopyStream {
    inner: TcpStream,
    min_len: usize,
}

impl ZeroCopyStream {
    /// Wraps a connected stream; slices of at least `min_len` bytes in the executable's
    /// read-only data go through `sendfile`. Set `TCP_NODELAY` on `inner` first, as
    /// [`ZeroCopyAccept`] does: without it a body's last segment can wait 40 ms.
    pub fn new(inner: TcpStream, min_len: usize) -> Self {
        Self {
            inner,
            min_len: min_len.max(1),
        }
    }

    /// The stream this wraps.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }

    /// The first slice to send from the file, with its index and file offset.
    fn zero_copy_slice(&self, bufs: &[IoSlice<'_>]) -> Option<(usize, u64)> {
        bufs.iter().enumerate().find_map(|(i, b)| {
            if b.len() >= self.min_len {
                image::locate(b).map(|offset| (i, offset))
            } else {
                None
            }
        })
    }
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.zero_copy_slice(bufs) {
            Some((i, offset)) => self.poll_send(cx, bufs, i, offset),
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        // hyper keeps the body's slices apart (its queue strategy) only for a stream
        // that writes vectors; that is what lets the body reach `sendfile` uncopied.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl ZeroCopyStream {
    /// Sends `bufs[..i]` (the head), then `bufs[i]` from the executable at `offset`.
    /// Returns how many bytes went out, as a vectored write does: a short count leaves
    /// the rest to the next call.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        i: usize,
        offset: u64,
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.inner.poll_write_ready(cx))?;
            match self.inner.try_io(tokio::io::Interest::WRITABLE, || {
                image::send(&self.inner, &bufs[..i], bufs[i].len(), offset)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // This file system or kernel cannot `sendfile` from the executable: the
                // path is off for the process from now on, and this write is a `writev`.
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
                }
                other => return Poll::Ready(other),
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod image {
    //! The running executable's read-only segments, as address ranges with their offsets
    //! in the file.

    use std::fs::File;
    use std::io::{self, IoSlice};
    use std::os::unix::fs::MetadataExt;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    use object::read::ReadCache;
    use object::read::elf::{Dyn, FileHeader, ProgramHeader};
    use rustix::net::{SendAncillaryBuffer, SendFlags};

    struct Image {
        file: File,
        /// `[start, end)` addresses and the file offset of `start`, sorted by `start`.
        ranges: Vec<(usize, usize, u64)>,
    }

    static IMAGE: OnceLock<Option<Image>> = OnceLock::new();
    /// Set when `sendfile` refused the executable (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`).
    static REFUSED: AtomicBool = AtomicBool::new(false);

    fn image() -> Option<&'static Image> {
        IMAGE.get_or_init(|| load().ok()).as_ref()
    }

    pub(super) fn warm() {
        image();
    }

    /// The file offset of `bytes`, when all of them lie in one read-only range.
    pub(super) fn locate(bytes: &[u8]) -> Option<u64> {
        if REFUSED.load(Ordering::Relaxed) {
            return None;
        }
        let image = image()?;
        let start = bytes.as_ptr() as usize;
        let end = start.checked_add(bytes.len())?;
        image
            .ranges
            .iter()
            .find(|&&(s, e, _)| s <= start && end <= e)
            .map(|&(s, _, offset)| offset + (start - s) as u64)
    }

    /// One attempt: `head` with `sendmsg`, then the file's bytes with `sendfile`.
    pub(super) fn send(
        socket: &tokio::net::TcpStream,
        head: &[IoSlice<'_>],
        len: usize,
        offset: u64,
    ) -> io::Result<usize> {
        let image = image().expect("locate found the image");
        let head_len: usize = head.iter().map(|b| b.len()).sum();
        let mut sent = 0;
        if head_len > 0 {
            sent = rustix::net::sendmsg(
                socket,
                head,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL,
            )?;
            if sent < head_len {
                return Ok(sent);
            }
        }
        let mut at = offset;
        match rustix::fs::sendfile(socket, &image.file, Some(&mut at), len) {
            Ok(n) => {
                if n > 0 {
                    super::SENT_FILES.fetch_add(1, Ordering::Relaxed);
                    super::SENT_BYTES.fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(sent + n)
            }
            // The head went out: report it, and the error (if it lasts) on the next call.
            Err(_) if sent > 0 => Ok(sent),
            Err(e)
                if [
                    rustix::io::Errno::INVAL,
                    rustix::io::Errno::NOSYS,
                    rustix::io::Errno::OPNOTSUPP,
                ]
                .contains(&e) =>
            {
                REFUSED.store(true, Ordering::Relaxed);
                Err(io::ErrorKind::Unsupported.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn load() -> io::Result<Image> {
        let file = File::open("/proc/self/exe")?;
        let meta = file.metadata()?;
        let segments = read_only_segments(&file)?;
        let maps = std::fs::read_to_string("/proc/self/maps")?;
        let dev = (rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()));
        let mut ranges = Vec::new();
        for line in maps.lines() {
            let Some(map) = Mapping::parse(line) else {
                continue;
            };
            if map.inode != meta.ino() || map.dev != dev || map.writable {
                continue;
            }
            let map_end = map.offset + (map.end - map.start) as u64;
            for &(seg_start, seg_end) in &segments {
                let lo = seg_start.max(map.offset);
                let hi = seg_end.min(map_end);
                if lo < hi {
                    let start = map.start + (lo - map.offset) as usize;
                    ranges.push((start, start + (hi - lo) as usize, lo));
                }
            }
        }
        ranges.sort_unstable();
        Ok(Image { file, ranges })
    }

    /// File ranges `[offset, offset + filesz)` of the loadable segments without `PF_W`;
    /// none when the executable has text relocations (`DT_TEXTREL`, or `DF_TEXTREL` in
    /// `DT_FLAGS`): the loader then writes into those segments, so their pages may differ
    /// from the file's bytes.
    fn read_only_segments(file: &File) -> io::Result<Vec<(u64, u64)>> {
        #[cfg(target_pointer_width = "64")]
        type Header = object::elf::FileHeader64<object::Endianness>;
        #[cfg(target_pointer_width = "32")]
        type Header = object::elf::FileHeader32<object::Endianness>;
        let invalid = |e: object::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        let data = ReadCache::new(file);
        let header = Header::parse(&data).map_err(invalid)?;
        let endian = header.endian().map_err(invalid)?;
        let headers = header.program_headers(endian, &data).map_err(invalid)?;
        for ph in headers {
            let Some(entries) = ph.dynamic(endian, &data).map_err(invalid)? else {
                continue;
            };
            let text_relocations = entries.iter().any(|d| {
                let tag = d.tag(endian);
                tag == object::elf::DT_TEXTREL
                    || (tag == object::elf::DT_FLAGS
                        && d.val(endian) & object::elf::DF_TEXTREL.0 != 0)
            });
            if text_relocations {
                return Ok(Vec::new());
            }
        }
        let mut out = Vec::new();
        for ph in headers {
            if ph.p_type(endian) == object::elf::PT_LOAD
                && ph.p_flags(endian).0 & object::elf::PF_W.0 == 0
            {
                // `u32` in a 32-bit executable's headers.
                #[allow(clippy::useless_conversion)]
                let offset: u64 = ph.p_offset(endian).into();
                #[allow(clippy::useless_conversion)]
                let size: u64 = ph.p_filesz(endian).into();
                out.push((offset, offset + size));
            }
        }
        Ok(out)
    }

    /// One line of `/proc/self/maps`.
    struct Mapping {
        start: usize,
        end: usize,
        writable: bool,
        offset: u64,
        dev: (u32, u32),
        inode: u64,
    }

    impl Mapping {
        fn parse(line: &str) -> Option<Self> {
            let mut fields = line.split_ascii_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let perms = fields.next()?;
            let offset = fields.next()?;
            let (major, minor) = fields.next()?.split_once(':')?;
            let inode = fields.next()?;
            Some(Self {
                start: usize::from_str_radix(start, 16).ok()?,
                end: usize::from_str_radix(end, 16).ok()?,
                writable: perms.as_bytes().get(1) != Some(&b'-'),
                offset: u64::from_str_radix(offset, 16).ok()?,
                dev: (
                    u32::from_str_radix(major, 16).ok()?,
                    u32::from_str_radix(minor, 16).ok()?,
                ),
                inode: inode.parse().ok()?,
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use std::os::unix::fs::FileExt;

        use super::*;

        static EMBEDDED: [u8; 20_000] = {
            let mut a = [0u8; 20_000];
            let mut i = 0;
            while i < a.len() {
                a[i] = (i * 7 % 251) as u8;
                i += 1;
            }
            a
        };

        #[test]
        fn a_static_byte_array_is_found_in_the_file_at_its_offset() {
            let bytes: &'static [u8] = &EMBEDDED;
            let offset = locate(bytes).expect("a static array is in a read-only segment");
            let mut from_file = vec![0; bytes.len()];
            image()
                .unwrap()
                .file
                .read_exact_at(&mut from_file, offset)
                .unwrap();
            assert_eq!(from_file, bytes);
            // A sub-slice too, at its own offset.
            let part = &bytes[1234..5678];
            assert_eq!(locate(part), Some(offset + 1234));
        }

        #[test]
        fn heap_stack_and_writable_statics_are_not() {
            static WRITABLE: std::sync::Mutex<[u8; 64]> = std::sync::Mutex::new([1; 64]);
            let heap = EMBEDDED.to_vec();
            assert_eq!(locate(&heap), None);
            let stack = [3u8; 256];
            assert_eq!(locate(&stack), None);
            let guard = WRITABLE.lock().unwrap();
            assert_eq!(locate(&guard[..]), None);
        }

        /// A minimal 64-bit ELF file: one read-only, executable `PT_LOAD` segment over the
        /// whole file and a `PT_DYNAMIC` segment with `dynamic` (tag, value) entries, then
        /// `DT_NULL`.
        #[cfg(target_pointer_width = "64")]
        fn elf_with_dynamic(dynamic: &[(i64, u64)]) -> File {
            let dynamic_at = 64 + 2 * 56;
            let dynamic_len = (dynamic.len() + 1) * 16;
            let total = (dynamic_at + dynamic_len) as u64;
            let mut elf = Vec::new();
            // The file header.
            elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
            elf.extend_from_slice(&[0; 8]);
            elf.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
            elf.extend_from_slice(&62u16.to_le_bytes()); // x86-64
            elf.extend_from_slice(&1u32.to_le_bytes());
            elf.extend_from_slice(&0u64.to_le_bytes()); // entry
            elf.extend_from_slice(&64u64.to_le_bytes()); // program headers' offset
            elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
            elf.extend_from_slice(&0u32.to_le_bytes());
            for half in [64u16, 56, 2, 64, 0, 0] {
                elf.extend_from_slice(&half.to_le_bytes());
            }
            // PT_LOAD (R+X) over the file, then PT_DYNAMIC (R).
            for (kind, flags, offset, size, align) in [
                (1u32, 5u32, 0u64, total, 0x1000u64),
                (2, 4, dynamic_at as u64, dynamic_len as u64, 8),
            ] {
                elf.extend_from_slice(&kind.to_le_bytes());
                elf.extend_from_slice(&flags.to_le_bytes());
                for word in [offset, offset, offset, size, size, align] {
                    elf.extend_from_slice(&word.to_le_bytes());
                }
            }
            for &(tag, value) in dynamic.iter().chain([&(0, 0)]) {
                elf.extend_from_slice(&tag.to_le_bytes());
                elf.extend_from_slice(&value.to_le_bytes());
            }
            assert_eq!(elf.len() as u64, total);
            let mut file = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut file, &elf).unwrap();
            file
        }

        /// Text relocations (either way of saying so) leave no segment to send from;
        /// other dynamic flags do not.
        #[test]
        #[cfg(target_pointer_width = "64")]
        fn text_relocations_leave_no_read_only_segment() {
            const DT_TEXTREL: i64 = 22;
            const DT_FLAGS: i64 = 30;
            const DF_TEXTREL: u64 = 4;
            const DF_BIND_NOW: u64 = 8;
            let whole = (0, 64 + 2 * 56 + 2 * 16);
            let plain = elf_with_dynamic(&[(DT_FLAGS, DF_BIND_NOW)]);
            assert_eq!(read_only_segments(&plain).unwrap(), vec![whole]);
            let tagged = elf_with_dynamic(&[(DT_TEXTREL, 0)]);
            assert_eq!(read_only_segments(&tagged).unwrap(), vec![]);
            let flagged = elf_with_dynamic(&[(DT_FLAGS, DF_BIND_NOW | DF_TEXTREL)]);
            assert_eq!(read_only_segments(&flagged).unwrap(), vec![]);
        }

        #[test]
        fn mapping_lines_parse() {
            let m = Mapping::parse(
                "55d0c8a00000-55d0c8a3e000 r--p 0001f000 fd:01 1234567   /usr/bin/app (deleted)",
            )
            .unwrap();
            assert_eq!((m.start, m.end), (0x55d0c8a00000, 0x55d0c8a3e000));
            assert!(!m.writable);
            assert_eq!(m.offset, 0x1f000);
            assert_eq!(m.dev, (0xfd, 1));
            assert_eq!(m.inode, 1234567);
            let w = Mapping::parse("7f00-7f10 rw-p 00000000 00:00 0").unwrap();
            assert!(w.writable);
            assert!(Mapping::parse("garbage").is_none());
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod image {
    use std::io::{self, IoSlice};

    pub(super) fn warm() {}

    pub(super) fn locate(_: &[u8]) -> Option<u64> {
        None
    }

    pub(super) fn send(
        _: &tokio::net::TcpStream,
        _: &[IoSlice<'_>],
        _: usize,
        _: u64,
    ) -> io::Result<usize> {
        unreachable!("locate never finds a range off Linux")
    }
}
