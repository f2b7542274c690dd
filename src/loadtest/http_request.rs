//! The request head the metrics endpoint accepts, parsed from raw bytes without allocating.
//!
//! Only what the endpoint needs is read: the request line (method, target, version) and that
//! every header line has the `name: value` shape. The target's query string (`?x=1`, which
//! Prometheus may add) is split off, not refused. The parser is a pure function of its input,
//! so the fuzz target `http_request` drives it directly.

/// Largest request head accepted (bytes); a longer one is answered 431.
pub const MAX_REQUEST_HEAD: usize = 8192;

/// A parsed request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// `GET`, `HEAD`, … (any token).
    pub method: &'a str,
    /// The target's path (`/metrics`), without its query.
    pub path: &'a str,
    /// The query after `?`, if any (`x=1`).
    pub query: Option<&'a str>,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: &'a str,
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The head is longer than [`MAX_REQUEST_HEAD`] bytes (answer 431).
    #[error("request head over {MAX_REQUEST_HEAD} bytes")]
    TooLarge,
    /// The head is not HTTP/1.x (answer 400); the text says which part.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete (no blank line
/// yet), the request line once it is complete.
///
/// # Errors
/// [`RequestError::TooLarge`] once `buf` holds more than [`MAX_REQUEST_HEAD`] bytes without a
/// complete head; [`RequestError::Malformed`] for a head that is not HTTP/1.x.
pub fn parse_head(buf: &[u8]) -> Result<Option<RequestHead<'_>>, RequestError> {
    let Some(end) = head_end(buf) else {
        return if buf.len() > MAX_REQUEST_HEAD {
            Err(RequestError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_REQUEST_HEAD {
        return Err(RequestError::TooLarge);
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| RequestError::Malformed("not ASCII"))?;
    if !head.is_ascii() {
        return Err(RequestError::Malformed("not ASCII"));
    }
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    for line in lines.filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, _)) if is_token(name) => {}
            _ => return Err(RequestError::Malformed("header line without `name:`")),
        }
    }
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed(
            "request line is not `METHOD TARGET VERSION`",
        ));
    };
    if !is_token(method) {
        return Err(RequestError::Malformed("method is not a token"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(RequestError::Malformed("version is not HTTP/1.0 or HTTP/1.1"));
    }
    let target = origin_form(target).ok_or(RequestError::Malformed("target is not a path"))?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Ok(Some(RequestHead {
        method,
        path,
        query,
        version,
    }))
}

/// Bytes up to and including the blank line ending the head (`\r\n\r\n`, or bare `\n\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    let limit = buf.len().min(MAX_REQUEST_HEAD + 4);
    (0..limit).find_map(|i| {
        let rest = &buf[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// The path-and-query of a target in origin form (`/metrics?x=1`) or absolute form
/// (`http://host:9464/metrics`); `None` for anything else (`*`, authority form, spaces).
fn origin_form(target: &str) -> Option<&str> {
    let t = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let t = t.split_once('#').map_or(t, |(before, _)| before);
    (t.starts_with('/') && t.bytes().all(|b| b.is_ascii_graphic())).then_some(t)
}

/// Whether `s` is an HTTP token (RFC 9110 `tchar`s, at least one).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_with_a_query_is_a_path_and_a_query() {
        let r = parse_head(b"GET /metrics?x=1&y HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.method, r.path, r.query), ("GET", "/metrics", Some("x=1&y")));
        let r = parse_head(b"GET http://h:1/metrics HTTP/1.0\n\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.path, r.query), ("/metrics", None));
    }

    #[test]
    fn incomplete_heads_wait_and_long_ones_are_refused() {
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
        let long = vec![b'a'; MAX_REQUEST_HEAD + 1];
        assert_eq!(parse_head(&long), Err(RequestError::TooLarge));
    }

    #[test]
    fn malformed_heads_are_refused() {
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /m\xc3\xa9 HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad), Err(RequestError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
