//! A minimal HTTP/1.1 GET over `std::net`, enough for `ebm data download`: plain `http://`
//! URLs, an optional `Range: bytes=N-`, redirects to other `http://` URLs, bodies sized by
//! Content-Length, chunked or ended by the server's close. No TLS: every file downloaded is
//! checked against a SHA-256 committed in the code, so the transport's integrity adds nothing,
//! and a TLS stack would add a C build and ~100 s to a clean build of the engine.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A server silent this long is taken as gone (the download can be resumed).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;
/// Longest status line or header line taken from a server.
const MAX_LINE: usize = 8192;
const MAX_HEADERS: usize = 100;

/// An `http://host[:port]/path` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// The path with its query, starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> anyhow::Result<Url> {
        let Some(rest) = url.strip_prefix("http://") else {
            if url.starts_with("https://") {
                bail!(
                    "{url}: https is not supported by this downloader (plain http only; every file is checked \
                     against its SHA-256, so nothing unverified is kept); give an http:// mirror, or download the \
                     files by hand into the data folder"
                );
            }
            bail!("{url}: not an http:// URL");
        };
        let (authority, path) = rest.find('/').map_or((rest, "/"), |k| (&rest[..k], &rest[k..]));
        if authority.is_empty() || authority.contains('@') {
            bail!("{url}: no host (or user credentials, which are not supported)");
        }
        let port = |p: &str| p.parse::<u16>().with_context(|| format!("{url}: port {p:?} is not a number"));
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, tail) = v6.split_once(']').with_context(|| format!("{url}: an unclosed [ in the host"))?;
            match tail.strip_prefix(':') {
                Some(p) => (host, port(p)?),
                None if tail.is_empty() => (host, 80),
                None => bail!("{url}: {tail:?} after the host"),
            }
        } else {
            match authority.split_once(':') {
                Some((host, p)) => (host, port(p)?),
                None => (authority, 80),
            }
        };
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            bail!("{url}: the path holds spaces or control characters");
        }
        Ok(Url { host: host.to_string(), port, path: path.to_string() })
    }

    /// `base` (a folder URL) joined with a file name.
    pub fn join(base: &str, name: &str) -> String {
        format!("{}/{name}", base.trim_end_matches('/'))
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 80 { host } else { format!("{host}:{}", self.port) }
    }
}

/// A response whose headers have been read; [`Response::body`] reads the rest.
pub struct Response {
    pub status: u16,
    /// The body's length when the server said (Content-Length).
    pub length: Option<u64>,
    reader: BufReader<TcpStream>,
    chunked: bool,
}

impl Response {
    /// The body, decoded (chunked) and bounded by Content-Length when given.
    pub fn body(self) -> Box<dyn Read> {
        match (self.chunked, self.length) {
            (true, _) => Box::new(Chunked { inner: self.reader, left: 0, done: false }),
            (false, Some(n)) => Box::new(Exact { inner: self.reader.take(n), expected: n }),
            (false, None) => Box::new(self.reader),
        }
    }
}

/// GET `url`, from byte `from` on when `from > 0` (a Range request; the caller checks for
/// status 206), following redirects to http:// URLs.
pub fn get(url: &str, from: u64) -> anyhow::Result<Response> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let parsed = Url::parse(&url)?;
        let response = request(&parsed, from).with_context(|| format!("GET {url}"))?;
        if matches!(response.response.status, 301 | 302 | 303 | 307 | 308) {
            let location = response.location.with_context(|| format!("{url}: a redirect without a Location"))?;
            url =
                if location.starts_with('/') { format!("http://{}{location}", parsed.host_header()) } else { location };
            continue;
        }
        return Ok(response.response);
    }
    bail!("{url}: more than {MAX_REDIRECTS} redirects")
}

struct Raw {
    response: Response,
    location: Option<String>,
}

fn connect(url: &Url) -> anyhow::Result<TcpStream> {
    let addrs: Vec<_> =
        (url.host.as_str(), url.port).to_socket_addrs().with_context(|| format!("resolving {}", url.host))?.collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e).with_context(|| format!("connecting to {}:{}", url.host, url.port)),
        None => bail!("{} has no address", url.host),
    }
}

fn request(url: &Url, from: u64) -> anyhow::Result<Raw> {
    let stream = connect(url)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let range = if from > 0 { format!("Range: bytes={from}-\r\n") } else { String::new() };
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ebm-gpu/{}\r\nAccept: */*\r\nAccept-Encoding: identity\r\n{range}Connection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    (&stream).write_all(head.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader)?;
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next().and_then(|s| s.parse::<u16>().ok())) {
        (Some(v), Some(s)) if v.starts_with("HTTP/1.") => s,
        _ => bail!("not an HTTP/1.x response: {:?}", status_line.chars().take(80).collect::<String>()),
    };
    let (mut length, mut chunked, mut location) = (None, false, None);
    for n in 0.. {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        if n >= MAX_HEADERS {
            bail!("more than {MAX_HEADERS} header lines");
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse::<u64>().with_context(|| format!("Content-Length {value:?}"))?)
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "location" => location = Some(value.to_string()),
            _ => {}
        }
    }
    Ok(Raw { response: Response { status, length: if chunked { None } else { length }, reader, chunked }, location })
}

/// One CRLF- (or LF-) ended line, without its ending; an error at end of stream.
fn read_line(reader: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = Vec::new();
    let n = reader.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        bail!("the server closed the connection before its headers ended");
    }
    if !line.ends_with(b"\n") {
        bail!("a header line longer than {MAX_LINE} bytes, or the connection closed inside one");
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A body of Content-Length bytes: ending early is an error, not a short file.
struct Exact<R> {
    inner: std::io::Take<R>,
    expected: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            let got = self.expected - self.inner.limit();
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the connection closed after {got} of {} bytes", self.expected),
            ));
        }
        Ok(n)
    }
}

/// Transfer-Encoding: chunked.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let line = read_line(&mut self.inner).map_err(|e| bad(e.to_string()))?;
            let size = line.split(';').next().unwrap_or("").trim();
            self.left = u64::from_str_radix(size, 16).map_err(|_| bad(format!("a chunk size {size:?}")))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection closed inside a chunk"));
        }
        self.left -= n as u64;
        if self.left == 0 {
            read_line(&mut self.inner).map_err(|e| bad(e.to_string()))?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = Url::parse("http://127.0.0.1:8080/mnist/a.gz").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("127.0.0.1", 8080, "/mnist/a.gz"));
        let u = Url::parse("http://example.org").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("example.org", 80, "/"));
        let u = Url::parse("http://[::1]:81/x").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.host_header().as_str()), ("::1", 81, "[::1]:81"));
        assert!(Url::parse("https://example.org/").unwrap_err().to_string().contains("https is not supported"));
        assert!(Url::parse("ftp://example.org/").is_err());
        assert!(Url::parse("http://h:x/").is_err());
        assert_eq!(Url::join("http://h/a/", "f.gz"), "http://h/a/f.gz");
    }

    #[test]
    fn chunked_bodies_decode() {
        let wire = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n";
        let mut out = String::new();
        Chunked { inner: &wire[..], left: 0, done: false }.read_to_string(&mut out).unwrap();
        assert_eq!(out, "Wikipedia");
        let cut = b"4\r\nWi";
        let mut out = Vec::new();
        assert!(Chunked { inner: &cut[..], left: 0, done: false }.read_to_end(&mut out).is_err());
    }
}
