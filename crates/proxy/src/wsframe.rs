//! Following WebSocket frame headers (RFC 6455 §5.2) in one direction of a tunnel, so
//! the tunnel can tell which side started the closing handshake.
//!
//! [`FrameScanner`] is fed the bytes as they pass, in whatever chunks the reads return.
//! It copies at most one header (2 to 14 bytes) at a time and skips payloads by
//! counting: the bytes themselves are never changed, held back or buffered. It does not
//! judge the protocol (the endpoints do): on anything that cannot be a frame header it
//! stops for good and says so ([`FrameScanner::is_lost`]). RSV bits are not looked at,
//! so extensions such as permessage-deflate (RSV1, compressed payloads) do not disturb
//! it.

/// The Close opcode.
pub const OP_CLOSE: u8 = 0x8;

/// The longest header: 2 bytes, a 64-bit length, a 4-byte masking key.
const MAX_HEAD: usize = 14;

/// One frame header as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub fin: bool,
    pub opcode: u8,
    pub masked: bool,
    /// Payload length.
    pub len: u64,
}

/// Where a [`FrameScanner`] is in the stream.
#[derive(Debug, Clone)]
enum State {
    /// Collecting a header: the first `have` bytes of it are in `head`.
    Head { head: [u8; MAX_HEAD], have: usize },
    /// Skipping this many payload bytes (never 0).
    Payload(u64),
    /// Saw something that is not a frame header; no longer following.
    Lost,
}

/// Follows the frame headers of one direction across arbitrary read splits.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    state: State,
}

impl Default for FrameScanner {
    fn default() -> Self {
        Self {
            state: State::Head {
                head: [0; MAX_HEAD],
                have: 0,
            },
        }
    }
}

/// The header length the first two bytes announce.
fn head_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Whether the first two bytes can start a frame: a defined opcode, and a control frame
/// (opcode 0x8-0xA) unfragmented with at most 125 bytes.
fn plausible(b0: u8, b1: u8) -> bool {
    let opcode = b0 & 0x0f;
    match opcode {
        0x0..=0x2 => true,
        0x8..=0xa => b0 & 0x80 != 0 && b1 & 0x7f <= 125,
        _ => false,
    }
}

impl FrameScanner {
    /// Whether the scanner gave up on this direction.
    pub fn is_lost(&self) -> bool {
        matches!(self.state, State::Lost)
    }

    /// Follows `data`, the next bytes of the stream; `on_frame` gets each header as soon
    /// as it is complete (before its payload).
    pub fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(FrameHead)) {
        while !data.is_empty() {
            match &mut self.state {
                State::Lost => return,
                State::Payload(left) => {
                    if *left > data.len() as u64 {
                        *left -= data.len() as u64;
                        return;
                    }
                    // `left` fits in the chunk, so in a usize.
                    data = &data[*left as usize..];
                    *self = Self::default();
                }
                State::Head { head, have } => {
                    let need = if *have < 2 { 2 } else { head_len(head[1]) };
                    let n = (need - *have).min(data.len());
                    head[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have < need {
                        continue;
                    }
                    if need == 2 {
                        if !plausible(head[0], head[1]) {
                            self.state = State::Lost;
                            return;
                        }
                        if head_len(head[1]) > 2 {
                            continue;
                        }
                    }
                    let len = match head[1] & 0x7f {
                        126 => u64::from(u16::from_be_bytes([head[2], head[3]])),
                        127 => {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(&head[2..10]);
                            u64::from_be_bytes(b)
                        }
                        l => u64::from(l),
                    };
                    if len >> 63 != 0 {
                        self.state = State::Lost;
                        return;
                    }
                    on_frame(FrameHead {
                        fin: head[0] & 0x80 != 0,
                        opcode: head[0] & 0x0f,
                        masked: head[1] & 0x80 != 0,
                        len,
                    });
                    if len == 0 {
                        *have = 0;
                    } else {
                        self.state = State::Payload(len);
                    }
                }
            }
        }
    }

    /// Follows `data`; whether a Close frame's header was among it.
    pub fn saw_close(&mut self, data: &[u8]) -> bool {
        let mut close = false;
        self.feed(data, |h| close |= h.opcode == OP_CLOSE);
        close
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The wire form of a frame with `head` and a payload of `head.len` bytes (`fill`);
    /// the length in at least `width` (0: 7 bits, 1: 16 bits, 2: 64 bits; a longer
    /// form than needed is still a frame to follow).
    fn encode_as(head: FrameHead, rsv: u8, fill: u8, width: u8) -> Vec<u8> {
        let mut out = vec![(u8::from(head.fin) << 7) | (rsv << 4) | head.opcode];
        let mask = if head.masked { 0x80 } else { 0 };
        match head.len {
            l if l <= 125 && width == 0 => out.push(mask | l as u8),
            l if l <= 0xffff && width <= 1 => {
                out.push(mask | 126);
                out.extend_from_slice(&(l as u16).to_be_bytes());
            }
            l => {
                out.push(mask | 127);
                out.extend_from_slice(&l.to_be_bytes());
            }
        }
        if head.masked {
            // A key that looks like header bytes, to catch a scanner that reads it as one.
            out.extend_from_slice(&[0x88, 0xfe, 0x7f, 0x81]);
        }
        out.resize(out.len() + head.len as usize, fill);
        out
    }

    fn encode(head: FrameHead, rsv: u8, fill: u8) -> Vec<u8> {
        encode_as(head, rsv, fill, 0)
    }

    fn scan(chunks: &[&[u8]]) -> (Vec<FrameHead>, bool) {
        let mut s = FrameScanner::default();
        let mut found = Vec::new();
        for c in chunks {
            s.feed(c, |h| found.push(h));
        }
        (found, s.is_lost())
    }

    /// A frame (header, RSV bits, payload byte, length width) as an endpoint may send
    /// it: data frames of any length (rarely past 64 KiB, where the 64-bit form is
    /// needed), control frames unfragmented and short.
    fn frame() -> impl Strategy<Value = (FrameHead, u8, u8, u8)> {
        let data = (
            any::<bool>(),
            0u8..=2,
            prop_oneof![30 => 0u64..=125, 10 => 126u64..=1000, 1 => 0x1_0000u64..=0x1_0040],
            0u8..=2,
        );
        let control = (Just(true), 0x8u8..=0xa, 0u64..=125, Just(0u8));
        (
            prop_oneof![3 => data, 1 => control],
            any::<bool>(),
            0u8..8,
            any::<u8>(),
        )
            .prop_map(|((fin, opcode, len, width), masked, rsv, fill)| {
                let head = FrameHead {
                    fin,
                    opcode,
                    masked,
                    len,
                };
                (head, rsv, fill, width)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A long stream of random frames, cut at every offset and also into random
        /// pieces: exactly the frames written are found, in order.
        #[test]
        fn finds_exactly_the_frames_written_however_the_stream_is_split(
            frames in prop::collection::vec(frame(), 1..32),
            cuts in prop::collection::vec(1usize..300, 1..64),
        ) {
            let wire: Vec<u8> = frames
                .iter()
                .flat_map(|&(h, rsv, fill, width)| encode_as(h, rsv, fill, width))
                .collect();
            let want: Vec<FrameHead> = frames.iter().map(|f| f.0).collect();
            let found = |got: (Vec<FrameHead>, bool)| got.0 == want && !got.1;
            prop_assert!(found(scan(&[&wire])));
            // Two pieces, at every possible boundary.
            for at in 0..=wire.len() {
                let (a, b) = wire.split_at(at);
                prop_assert!(found(scan(&[a, b])), "split at {}", at);
            }
            // Many pieces of random sizes (cycled), down to single bytes.
            let mut pieces = Vec::new();
            let mut rest = &wire[..];
            for &c in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at(c.min(rest.len()));
                pieces.push(a);
                rest = b;
            }
            prop_assert!(found(scan(&pieces)));
            let bytes: Vec<&[u8]> = wire.chunks(1).collect();
            prop_assert!(found(scan(&bytes)));
        }
    }

    #[test]
    fn a_close_is_seen_in_the_chunk_that_completes_its_header() {
        let text = encode(
            FrameHead {
                fin: true,
                opcode: 1,
                masked: true,
                len: 3,
            },
            0,
            b'x',
        );
        let close = encode(
            FrameHead {
                fin: true,
                opcode: OP_CLOSE,
                masked: true,
                len: 2,
            },
            0,
            0,
        );
        let mut s = FrameScanner::default();
        assert!(!s.saw_close(&text));
        assert!(!s.saw_close(&close[..5]));
        assert!(s.saw_close(&close[5..6]));
        assert!(!s.saw_close(&close[6..]));
        assert!(!s.is_lost());
    }

    #[test]
    fn permessage_deflate_frames_are_followed() {
        // RSV1 set on the first frame of a compressed message, payload unreadable.
        let mut wire = encode(
            FrameHead {
                fin: false,
                opcode: 2,
                masked: false,
                len: 300,
            },
            0b100,
            0xff,
        );
        wire.extend(encode(
            FrameHead {
                fin: true,
                opcode: 0,
                masked: false,
                len: 7,
            },
            0,
            0x88,
        ));
        wire.extend(encode(
            FrameHead {
                fin: true,
                opcode: OP_CLOSE,
                masked: false,
                len: 0,
            },
            0,
            0,
        ));
        let (found, lost) = scan(&[&wire]);
        assert!(!lost);
        let ops: Vec<u8> = found.iter().map(|h| h.opcode).collect();
        assert_eq!(ops, [2, 0, OP_CLOSE]);
    }

    #[test]
    fn anything_that_is_not_a_frame_header_stops_the_scanner() {
        let ok = encode(
            FrameHead {
                fin: true,
                opcode: 1,
                masked: true,
                len: 5,
            },
            0,
            b'a',
        );
        let bad: [&[u8]; 8] = [
            // Reserved opcodes.
            &[0x83, 0x00],
            &[0x87, 0x00],
            &[0x8b, 0x00],
            &[0x8f, 0x00],
            // A 64-bit length with the top bit set.
            &[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1],
            // Control frames longer than 125 bytes, or fragmented.
            &[0x88, 0x7e, 0x00, 0x7e],
            &[0x89, 0x7f, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0x08, 0x00],
        ];
        for b in bad {
            let close = [0x88, 0x00];
            // After a valid frame, split byte by byte, and followed by a real Close.
            let mut s = FrameScanner::default();
            let mut found = Vec::new();
            for c in ok.iter().chain(b).chain(&close) {
                s.feed(std::slice::from_ref(c), |h| found.push(h));
            }
            assert!(s.is_lost(), "{b:02x?}");
            assert_eq!(found.len(), 1, "{b:02x?}: {found:?}");
            // Nothing after it is looked at any more.
            assert!(!s.saw_close(&close));
        }
        // Plain HTTP is not a frame either ('G' = 0x47, opcode 0x7).
        let mut s = FrameScanner::default();
        assert!(!s.saw_close(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(s.is_lost());
    }
}
