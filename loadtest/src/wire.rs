//! A minimal HTTP/1.1 client exchange: write one request, read one response.
//!
//! The generator spends most of its time in the client, and a general-purpose
//! client (a pool keyed by host, a connection task and a channel per request)
//! costs several times what the exchange itself does. Here one task owns one
//! keep-alive connection and writes pre-serialized requests to it, like wrk does;
//! responses are framed by Content-Length, chunked encoding, or the end of the
//! connection, which covers what HTTP/1.1 servers send.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("connection closed before the response was complete")]
    Closed,
}

/// The status of a complete response and whether the connection can be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub keep_alive: bool,
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Writes `request` and reads the response into `buf` (cleared first).
pub async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    head_request: bool,
    buf: &mut BytesMut,
) -> Result<Answer, WireError> {
    stream.write_all(request).await?;
    buf.clear();
    // Head.
    let (status, header_len, framing, keep_alive) = loop {
        if stream.read_buf(buf).await? == 0 {
            return Err(WireError::Closed);
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.unwrap_or(0);
                let mut framing = None;
                let mut keep_alive = response.version == Some(1);
                for h in response.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let n = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .ok_or_else(|| WireError::Malformed("bad Content-Length".into()))?;
                        framing.get_or_insert(Framing::Length(n));
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                        && h.value.to_ascii_lowercase().ends_with(b"chunked")
                    {
                        framing = Some(Framing::Chunked);
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        let v = h.value.to_ascii_lowercase();
                        if v == b"close" {
                            keep_alive = false;
                        } else if v == b"keep-alive" {
                            keep_alive = true;
                        }
                    }
                }
                let framing = if head_request || status == 204 || status == 304 || status < 200 {
                    Framing::Length(0)
                } else {
                    framing.unwrap_or(Framing::UntilClose)
                };
                break (status, len, framing, keep_alive);
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(WireError::Malformed(e.to_string())),
        }
    };
    buf.advance(header_len);
    // Body.
    match framing {
        Framing::Length(n) => {
            while buf.len() < n {
                if stream.read_buf(buf).await? == 0 {
                    return Err(WireError::Closed);
                }
            }
            Ok(Answer { status, keep_alive })
        }
        Framing::Chunked => loop {
            if chunked_end(buf)?.is_some() {
                return Ok(Answer { status, keep_alive });
            }
            if stream.read_buf(buf).await? == 0 {
                return Err(WireError::Closed);
            }
        },
        Framing::UntilClose => {
            while stream.read_buf(buf).await? != 0 {
                buf.clear();
            }
            Ok(Answer {
                status,
                keep_alive: false,
            })
        }
    }
}

/// The length of a complete chunked body at the start of `body`, or `None` when
/// more bytes are needed.
pub fn chunked_end(body: &[u8]) -> Result<Option<usize>, WireError> {
    let mut at = 0;
    loop {
        let Some(line_end) = find_crlf(&body[at..]) else {
            return Ok(None);
        };
        let line = &body[at..at + line_end];
        let size_text = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| WireError::Malformed("bad chunk size".into()))?;
        at += line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(end) = find_crlf(&body[at..]) else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_end_after_the_last_chunk_and_trailers() {
        assert_eq!(chunked_end(b"5\r\nhello\r\n0\r\n\r\n").unwrap(), Some(15));
        assert_eq!(
            chunked_end(b"5;x=1\r\nhello\r\n0\r\nA: b\r\n\r\n").unwrap(),
            Some(25)
        );
        assert_eq!(chunked_end(b"5\r\nhel").unwrap(), None);
        assert_eq!(chunked_end(b"5\r\nhello\r\n0\r\n").unwrap(), None);
        assert!(chunked_end(b"zz\r\n").is_err());
    }

    #[tokio::test]
    async fn responses_framed_each_way_are_read_whole_on_one_connection() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for answer in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
                b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
            ] {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                s.write_all(answer).await.unwrap();
            }
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut buf = BytesMut::new();
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let answers: Vec<Answer> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(exchange(&mut stream, req, false, &mut buf).await.unwrap());
            }
            let last = tokio::spawn(async move {
                let mut buf = BytesMut::new();
                exchange(&mut stream, req, false, &mut buf).await.unwrap()
            });
            server.await.unwrap();
            v.push(last.await.unwrap());
            v
        };
        let statuses: Vec<(u16, bool)> = answers.iter().map(|a| (a.status, a.keep_alive)).collect();
        assert_eq!(
            statuses,
            vec![(200, true), (503, true), (204, true), (200, false)]
        );
    }
}
