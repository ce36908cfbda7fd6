//! Length-prefixed framing (INTERFACE §4): a 4-byte big-endian length, then that many bytes of JSON.
//!
//! ```text
//!  +--------+--------+--------+--------+------------------ … ---+
//!  |      length (u32, big-endian)     |  payload (length bytes) |
//!  +--------+--------+--------+--------+------------------ … ---+
//! ```
//!
//! The decoder is a pure function over a byte buffer ([`decode`]), so it can be property-tested
//! and fuzzed without I/O; [`FrameReader`] drives it over any `AsyncRead` and is cancel-safe.
//! A declared length above [`MAX_FRAME`] is rejected as soon as the header is in, before any of
//! the body is awaited, so a hostile peer cannot make us allocate or read 4 GiB.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload accepted or sent. INTERFACE §4: "Frames over 16 MiB are refused".
/// A base64 message of ~12 MiB still fits; anything larger is not something Outlook sends.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// How much to ask the OS for when no frame size is known yet.
const READ_CHUNK: usize = 8 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The declared (or, when sending, the actual) length is over [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {max} bytes", max = MAX_FRAME)]
    TooLarge { len: usize },
    /// The stream ended part-way through a frame.
    #[error("stream ended inside a frame ({have} of {want} bytes received)")]
    Truncated { have: usize, want: usize },
    /// The underlying stream failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The result of looking at a buffer: one complete frame, or how many more bytes are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame is at the start of the buffer: the payload is
    /// `buf[HEADER_LEN..HEADER_LEN + len]` and the frame takes `HEADER_LEN + len` bytes.
    Frame { len: usize },
    /// At least this many more bytes are needed before a frame is complete.
    Need(usize),
}

/// Looks at the start of `buf`. Never panics, whatever the bytes (see the proptests).
pub fn decode(buf: &[u8]) -> Result<Decoded, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(Decoded::Need(HEADER_LEN - buf.len()));
    };
    // u32 always fits in usize on the 32- and 64-bit targets we build for.
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len });
    }
    let total = HEADER_LEN + len;
    if buf.len() >= total {
        Ok(Decoded::Frame { len })
    } else {
        Ok(Decoded::Need(total - buf.len()))
    }
}

/// Frames `payload` into one buffer (header and body), ready for a single `write_all`.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len = payload.len();
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    // Cannot truncate: len <= MAX_FRAME < u32::MAX.
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Writes one frame and flushes. Not cancel-safe: a cancelled write leaves a partial frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> Result<(), FrameError> {
    let framed = encode(payload)?;
    w.write_all(&framed).await?;
    w.flush().await?;
    Ok(())
}

/// Reads frames from a stream. [`FrameReader::next`] is cancel-safe: bytes already read stay in
/// the reader's buffer, so it may be used in `tokio::select!`.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// With [`FrameReader::with_idle_limit`]: how long a begun frame may take to complete.
    idle: Option<std::time::Duration>,
    /// When the first byte of the frame now being read arrived.
    began: Option<tokio::time::Instant>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            idle: None,
            began: None,
        }
    }

    /// A frame begun but not complete within `limit` ends [`FrameReader::next`] with an I/O
    /// error of kind `TimedOut` (a half-sent frame holds nothing open for long).
    pub fn with_idle_limit(mut self, limit: std::time::Duration) -> Self {
        self.idle = Some(limit);
        self
    }

    /// The next payload; `Ok(None)` on a clean end of stream between frames.
    ///
    /// On [`FrameError::TooLarge`] nothing of the body has been waited for; the caller should
    /// answer and close rather than call `next` again (the stream is out of step by then).
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            match decode(&self.buf)? {
                Decoded::Frame { len } => {
                    self.began = None;
                    let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
                    self.buf.drain(..HEADER_LEN + len);
                    // Give back the room a big frame took, so an idle connection stays small.
                    if self.buf.capacity() > 4 * READ_CHUNK && self.buf.len() <= READ_CHUNK {
                        self.buf.shrink_to(READ_CHUNK);
                    }
                    return Ok(Some(payload));
                }
                Decoded::Need(n) => {
                    // Room for a chunk at a time: the buffer grows as bytes arrive (doubling),
                    // never by what a header merely announces (up to MAX_FRAME per connection).
                    self.buf.reserve(READ_CHUNK);
                    let read = match (self.idle, self.buf.is_empty()) {
                        (Some(limit), false) => {
                            let began = *self.began.get_or_insert_with(tokio::time::Instant::now);
                            tokio::time::timeout_at(began + limit, self.inner.read_buf(&mut self.buf))
                                .await
                                .map_err(|_| {
                                    io::Error::new(
                                        io::ErrorKind::TimedOut,
                                        format!("a frame was left unfinished for {}s", limit.as_secs()),
                                    )
                                })??
                        }
                        _ => self.inner.read_buf(&mut self.buf).await?,
                    };
                    if read == 0 {
                        return match self.buf.len() {
                            0 => Ok(None),
                            have => Err(FrameError::Truncated { have, want: have + n }),
                        };
                    }
                }
            }
        }
    }

    /// Bytes read but not yet returned as a frame (a frame in progress, or frames queued).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>) {
        futures::executor::block_on(async {
            let mut reader = FrameReader::new(bytes);
            let mut frames = Vec::new();
            loop {
                match reader.next().await {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => return (frames, None),
                    Err(e) => return (frames, Some(e)),
                }
            }
        })
    }

    #[test]
    fn round_trip_several_frames() {
        let mut wire = Vec::new();
        for p in [&b"{}"[..], b"", b"{\"a\":1}"] {
            wire.extend(encode(p).unwrap());
        }
        let (frames, err) = read_all(&wire);
        assert!(err.is_none());
        assert_eq!(frames, vec![b"{}".to_vec(), Vec::new(), b"{\"a\":1}".to_vec()]);
    }

    #[test]
    fn header_is_big_endian() {
        assert_eq!(&encode(&[7; 258]).unwrap()[..4], &[0, 0, 1, 2]);
    }

    #[test]
    fn exact_limit_is_accepted() {
        let header = (MAX_FRAME as u32).to_be_bytes();
        assert_eq!(decode(&header).unwrap(), Decoded::Need(MAX_FRAME));
        let payload = vec![b' '; MAX_FRAME];
        let wire = encode(&payload).unwrap();
        assert_eq!(decode(&wire).unwrap(), Decoded::Frame { len: MAX_FRAME });
        let (frames, err) = read_all(&wire);
        assert!(err.is_none());
        assert_eq!(frames[0].len(), MAX_FRAME);
    }

    #[test]
    fn one_over_the_limit_is_refused() {
        let header = (MAX_FRAME as u32 + 1).to_be_bytes();
        let err = decode(&header).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len } if len == MAX_FRAME + 1));
        assert_eq!(
            err.to_string(),
            "frame of 16777217 bytes exceeds the limit of 16777216 bytes"
        );
        assert!(matches!(
            encode(&vec![0; MAX_FRAME + 1]),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn oversize_is_refused_without_the_body() {
        // Only the header is there: the reader must fail now, not wait for 4 GiB.
        let (frames, err) = read_all(&u32::MAX.to_be_bytes());
        assert!(frames.is_empty());
        assert!(matches!(err, Some(FrameError::TooLarge { len }) if len == u32::MAX as usize));
    }

    #[test]
    fn truncated_header_and_body() {
        let (_, err) = read_all(&[0, 0]);
        assert!(matches!(err, Some(FrameError::Truncated { have: 2, want: 4 })));
        let mut wire = encode(b"hello").unwrap();
        wire.truncate(7);
        let (_, err) = read_all(&wire);
        assert!(matches!(err, Some(FrameError::Truncated { have: 7, want: 9 })));
    }

    #[test]
    fn empty_stream_is_a_clean_end() {
        let (frames, err) = read_all(&[]);
        assert!(frames.is_empty() && err.is_none());
    }

    #[tokio::test]
    async fn frames_split_across_reads() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            let wire = [encode(b"first").unwrap(), encode(&[b'x'; 300]).unwrap()].concat();
            for byte in wire {
                tx.write_all(&[byte]).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(rx);
        assert_eq!(reader.next().await.unwrap().unwrap(), b"first");
        assert_eq!(reader.next().await.unwrap().unwrap().len(), 300);
        writer.await.unwrap();
        assert!(reader.next().await.unwrap().is_none());
    }

    proptest! {
        #[test]
        fn prop_round_trip(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..8)) {
            let wire: Vec<u8> = payloads.iter().flat_map(|p| encode(p).unwrap()).collect();
            let (frames, err) = read_all(&wire);
            prop_assert!(err.is_none());
            prop_assert_eq!(frames, payloads);
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&bytes);
            let (frames, _) = read_all(&bytes);
            // Whatever came out is consistent with the input: never more payload than input.
            prop_assert!(frames.iter().map(|f| f.len() + HEADER_LEN).sum::<usize>() <= bytes.len());
        }

        #[test]
        fn prop_decode_need_is_exact(len in 0usize..5000, cut in 0usize..5004) {
            let wire = encode(&vec![1; len]).unwrap();
            let cut = cut.min(wire.len());
            match decode(&wire[..cut]).unwrap() {
                Decoded::Frame { len: l } => prop_assert!(l == len && cut == wire.len()),
                Decoded::Need(n) if cut < HEADER_LEN => prop_assert_eq!(n, HEADER_LEN - cut),
                Decoded::Need(n) => prop_assert_eq!(cut + n, wire.len()),
            }
        }
    }

    /// A header announcing 16 MiB reserves nothing like it: the buffer grows with what arrives.
    #[tokio::test]
    async fn a_header_alone_reserves_no_body() {
        use tokio::io::AsyncWriteExt as _;
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server);
        client.write_all(&(MAX_FRAME as u32).to_be_bytes()).await.unwrap();
        client.write_all(b"{\"jsonrpc\"").await.unwrap();
        let pending = tokio::time::timeout(std::time::Duration::from_millis(100), reader.next()).await;
        assert!(pending.is_err(), "the frame is not complete");
        assert_eq!(reader.buffered(), HEADER_LEN + 10);
        assert!(
            reader.buf.capacity() < 1 << 20,
            "{} bytes reserved",
            reader.buf.capacity()
        );
    }
}
