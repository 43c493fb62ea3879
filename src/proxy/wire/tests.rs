use super::*;

fn head_of(raw: &[u8]) -> Result<Option<Head>, WireError> {
    take_head(&mut BytesMut::from(raw), &mut Names::default(), &mut HeaderMap::new())
}

fn head(raw: &str) -> Head {
    head_of(raw.as_bytes()).expect("parses").expect("complete")
}

fn framing_of(method: Method, raw: &str) -> Result<Framing, WireError> {
    framing(&method, &mut head(raw))
}

/// Decode `body` under `state` fed in pieces of `piece` bytes; the data
/// and how it ended (`Ok(true)`: ended; `Ok(false)`: wants more at the end).
fn decode(mut state: State, body: &[u8], piece: usize) -> (Vec<u8>, Result<bool, WireError>) {
    let mut read = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        match state.step(&mut read) {
            Ok(Step::Data(d)) => out.extend_from_slice(&d),
            Ok(Step::Trailers(_) | Step::End) => return (out, Ok(true)),
            Ok(Step::More { .. }) if rest.is_empty() => return (out, Ok(false)),
            Ok(Step::More { .. }) => {
                let n = piece.min(rest.len());
                read.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            Err(e) => return (out, Err(e)),
        }
    }
}

#[test]
fn a_head_is_taken_off_the_buffer_with_its_fields_in_order() {
    let mut read = BytesMut::from(&b"HTTP/1.1 404 Nope\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 3\r\n\r\nabcNEXT"[..]);
    let head = take_head(&mut read, &mut Names::default(), &mut HeaderMap::new())
        .expect("parses")
        .expect("complete");
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert_eq!(head.version, Version::HTTP_11);
    let values: Vec<_> = head.headers.get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(head.headers["content-length"], "3");
    assert_eq!(&read[..], b"abcNEXT", "the body stays buffered");
}

#[test]
fn an_incomplete_head_waits_and_an_empty_value_is_kept() {
    assert!(head_of(b"").expect("empty").is_none());
    assert!(head_of(b"HTTP/1.1 200 OK\r\nx-a: 1\r\n").expect("partial").is_none());
    let head = head("HTTP/1.1 200 OK\r\nx-empty:\r\nx-b: \r\n\r\n");
    assert_eq!(head.headers["x-empty"], "");
    assert_eq!(head.headers["x-b"], "");
}

/// Take `raw`'s head with `names` from the heads before it.
fn next_head(names: &mut Names, raw: &str) -> Result<Head, WireError> {
    take_head(&mut BytesMut::from(raw.as_bytes()), names, &mut HeaderMap::new()).map(|h| h.expect("complete"))
}

fn fields(head: &Head) -> Vec<(String, String)> {
    head.headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().expect("text").to_string()))
        .collect()
}

#[test]
fn names_known_from_earlier_heads_are_reused_only_where_their_bytes_match() {
    let mut names = Names::default();
    let first = next_head(
        &mut names,
        "HTTP/1.1 200 OK\r\nServer: a\r\nX-One: 1\r\nETag: e\r\n\r\n",
    )
    .expect("first");
    assert_eq!(
        fields(&first),
        [("server", "a"), ("x-one", "1"), ("etag", "e")].map(|(n, v)| (n.into(), v.into()))
    );
    // The same names again, one of them in another case, one replaced,
    // one added: each field gets its own name, whatever stood there before.
    for (raw, want) in [
        (
            "HTTP/1.1 200 OK\r\nServer: b\r\nX-ONE: 2\r\nETag: f\r\nX-New: n\r\n\r\n",
            vec![("server", "b"), ("x-one", "2"), ("etag", "f"), ("x-new", "n")],
        ),
        (
            "HTTP/1.1 200 OK\r\nServer: c\r\nX-Two: 3\r\nETag: g\r\nX-New: m\r\n\r\n",
            vec![("server", "c"), ("x-two", "3"), ("etag", "g"), ("x-new", "m")],
        ),
        ("HTTP/1.1 200 OK\r\nETag: h\r\n\r\n", vec![("etag", "h")]),
        (
            "HTTP/1.1 200 OK\r\nETag: i\r\nX-Two: 4\r\nServer: d\r\n\r\n",
            vec![("etag", "i"), ("x-two", "4"), ("server", "d")],
        ),
    ] {
        let head = next_head(&mut names, raw).expect(raw);
        let want: Vec<(String, String)> = want.into_iter().map(|(n, v)| (n.into(), v.into())).collect();
        assert_eq!(fields(&head), want, "{raw:?}");
        for (name, _) in &head.headers {
            assert_eq!(
                Some(name),
                HeaderName::from_bytes(name.as_str().as_bytes()).ok().as_ref()
            );
        }
    }
    // A bad name where a good one stood is still refused, and the next
    // head is read as if nothing had gone before.
    assert!(matches!(
        next_head(&mut names, "HTTP/1.1 200 OK\r\nETag: i\r\nX-Two\x01: 4\r\n\r\n"),
        Err(WireError::Malformed(_))
    ));
    let head = next_head(&mut names, "HTTP/1.1 200 OK\r\nETag: j\r\nX-Two: 5\r\n\r\n").expect("after");
    assert_eq!(
        fields(&head),
        [("etag", "j"), ("x-two", "5")].map(|(n, v)| (n.into(), v.into()))
    );
}

/// A `Conn` over a loopback connection (its peer is returned too, to keep
/// the socket open).
async fn loopback_conn() -> (Conn, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (ours, theirs) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let io = TokioIo::new(MaybeHttpsStream::Http(TokioIo::new(ours.expect("connect"))));
    (Conn::new(io), theirs.expect("accept").0)
}

#[tokio::test]
async fn many_or_long_remembered_names_are_forgotten_while_idle() {
    let (mut conn, _peer) = loopback_conn().await;
    let learn = |conn: &mut Conn, raw: &str| {
        take_head(
            &mut BytesMut::from(raw.as_bytes()),
            &mut conn.names,
            &mut HeaderMap::new(),
        )
        .expect("parses")
        .expect("complete");
    };
    learn(
        &mut conn,
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: x\r\nContent-Length: 0\r\n\r\n",
    );
    conn.trim();
    assert_eq!(conn.names.parsed.len(), 3, "the usual names stay");
    let long = format!("HTTP/1.1 200 OK\r\nx-{}: 1\r\n\r\n", "n".repeat(NAMES_KEPT));
    learn(&mut conn, &long);
    conn.trim();
    assert!(conn.names.parsed.is_empty() && conn.names.raw.capacity() == 0);
}

#[test]
fn the_room_a_head_is_built_in_keeps_nothing_of_what_it_held() {
    let mut room = HeaderMap::new();
    room.insert("x-request-only", HeaderValue::from_static("secret"));
    room.insert(header::COOKIE, HeaderValue::from_static("usher=v1.x"));
    let mut read = BytesMut::from(&b"HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\n"[..]);
    let head = take_head(&mut read, &mut Names::default(), &mut room)
        .expect("parses")
        .expect("complete");
    assert_eq!(fields(&head), [("x-a".to_string(), "1".to_string())]);
    assert!(room.is_empty());
    // Partial and refused heads leave the room alone.
    let mut room = HeaderMap::new();
    room.insert("x-kept", HeaderValue::from_static("1"));
    let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nx-a: 1\r\n"[..]);
    assert!(
        take_head(&mut partial, &mut Names::default(), &mut room)
            .expect("partial")
            .is_none()
    );
    assert_eq!(room.len(), 1);
}

#[test]
fn malformed_heads_are_errors() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nx-a: one\r\n two\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nx a: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a : 1\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 OK\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a: a\x7fb\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
    ] {
        assert!(
            matches!(head_of(raw), Err(WireError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert!(matches!(
        head_of(&many),
        Err(WireError::Malformed("too many header fields"))
    ));
}

#[test]
fn framing_follows_rfc_9112_and_refuses_what_is_ambiguous() {
    let ok = |m: Method, raw: &str| framing_of(m, raw).expect(raw);
    assert_eq!(
        ok(Method::GET, "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n"),
        Framing::Length(12)
    );
    assert_eq!(
        ok(Method::GET, "HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n"),
        Framing::Length(3)
    );
    assert_eq!(
        ok(
            Method::GET,
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\n"
        ),
        Framing::Length(3)
    );
    assert_eq!(
        ok(Method::GET, "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"),
        Framing::Chunked
    );
    assert_eq!(
        ok(
            Method::GET,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
        ),
        Framing::Chunked
    );
    assert_eq!(ok(Method::GET, "HTTP/1.1 200 OK\r\n\r\n"), Framing::Close);
    // No body, whatever the fields say.
    assert_eq!(
        ok(Method::HEAD, "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n"),
        Framing::Length(0)
    );
    assert_eq!(
        ok(Method::GET, "HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"),
        Framing::Length(0)
    );
    assert_eq!(
        ok(
            Method::GET,
            "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n"
        ),
        Framing::Length(0)
    );
    for raw in [
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: ,\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: -3\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 0x3\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 3 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551616\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
    ] {
        assert!(framing_of(Method::GET, raw).is_err(), "{raw:?}");
    }
    let mut obs_text = head_of(b"HTTP/1.1 200 OK\r\ncontent-length: 3\xff\r\n\r\n")
        .expect("parses")
        .expect("complete");
    assert!(framing(&Method::GET, &mut obs_text).is_err(), "non-ASCII length");
    // A repeated length is passed on once.
    let mut twice = head("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\ncontent-length: 3\r\n\r\n");
    assert_eq!(framing(&Method::GET, &mut twice).expect("framing"), Framing::Length(3));
    let lengths: Vec<_> = twice.headers.get_all("content-length").iter().collect();
    assert_eq!(lengths, ["3"]);
}

#[test]
fn only_a_clean_http_1_1_answer_with_a_length_keeps_its_connection() {
    let reuse = |raw: &str| {
        let mut head = head(raw);
        let framing = framing(&Method::GET, &mut head).expect("framing");
        reusable(&head, framing)
    };
    assert!(reuse("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n"));
    assert!(reuse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"));
    assert!(reuse(
        "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\n"
    ));
    assert!(!reuse(
        "HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 1\r\n\r\n"
    ));
    assert!(!reuse(
        "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\n"
    ));
    assert!(!reuse("HTTP/1.1 200 OK\r\n\r\n"));
    assert!(!reuse("HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n"));
}

#[test]
fn a_length_body_stops_at_its_length_and_leaves_the_rest() {
    let mut read = BytesMut::from(&b"abcdefXYZ"[..]);
    let mut state = State::Length(6);
    let Ok(Step::Data(d)) = state.step(&mut read) else {
        panic!("data")
    };
    assert_eq!(&d[..], b"abcdef");
    assert!(matches!(state.step(&mut read), Ok(Step::End)));
    assert_eq!(&read[..], b"XYZ", "bytes past the length are not the body's");
    for piece in [1, 2, 7, 100] {
        assert_eq!(decode(State::Length(6), b"abcdef", piece).0, b"abcdef");
        let (got, end) = decode(State::Length(6), b"abc", piece);
        assert_eq!((got.as_slice(), end.expect("no error")), (&b"abc"[..], false));
    }
}

#[test]
fn chunked_bodies_decode_in_any_pieces() {
    let body = b"5;a=b\r\nhello\r\n6 \r\n world\r\n10\r\n, sixteen bytes!\r\n0\r\nx-sum: 1\r\nx-other: 2\r\n\r\n";
    for piece in [1, 2, 3, 5, 8, 64, 1024] {
        let (got, end) = decode(State::ChunkSize, body, piece);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "hello world, sixteen bytes!",
            "piece {piece}"
        );
        assert!(end.expect("no error"), "piece {piece}");
    }
    let mut read = BytesMut::from(&b"0\r\nx-sum: 1\r\n\r\n"[..]);
    let mut state = State::ChunkSize;
    let Ok(Step::Trailers(fields)) = state.step(&mut read) else {
        panic!("trailers")
    };
    assert_eq!(fields["x-sum"], "1");
    assert!(read.is_empty());
    // No trailers: the end, and nothing left over.
    let mut read = BytesMut::from(&b"0\r\n\r\n"[..]);
    assert!(matches!(State::ChunkSize.step(&mut read), Ok(Step::End)));
    assert!(read.is_empty());
}

#[test]
fn bad_chunked_framing_is_an_error() {
    for body in [
        &b"2;x\nHTTP/1.1 200 OK\r\nok\r\n0\r\n\r\n"[..],
        b"3\r\nhello\r\n0\r\n\r\n",
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"-1\r\nx\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"10000000000000000\r\n",
        b"0\r\nbad trailer\r\n\r\n",
    ] {
        for piece in [1, 4, 1024] {
            let (got, end) = decode(State::ChunkSize, body, piece);
            assert!(end.is_err(), "{:?} in pieces of {piece}", String::from_utf8_lossy(body));
            assert!(got.len() <= 3, "{:?}: {got:?}", String::from_utf8_lossy(body));
        }
    }
    // A chunk-size line without end is cut at its limit.
    let mut long = b"1;".to_vec();
    long.resize(MAX_CHUNK_LINE + 10, b'x');
    assert!(decode(State::ChunkSize, &long, 64).1.is_err());
}

#[test]
fn a_close_delimited_body_says_it_may_end_at_the_close() {
    let mut read = BytesMut::new();
    let mut state = State::Close;
    assert!(matches!(state.step(&mut read), Ok(Step::More { at_close: true })));
    read.extend_from_slice(b"some");
    let Ok(Step::Data(d)) = state.step(&mut read) else {
        panic!("data")
    };
    assert_eq!(&d[..], b"some");
    assert!(matches!(
        State::Length(3).step(&mut read),
        Ok(Step::More { at_close: false })
    ));
}

#[test]
fn the_request_head_carries_no_framing_of_the_clients() {
    let (mut parts, ()) = http::Request::builder()
        .method(Method::POST)
        .uri("/p?q=1")
        .header("host", "app")
        .header("content-length", "7")
        .header("transfer-encoding", "chunked")
        .header("x-a", "b")
        .body(())
        .expect("request")
        .into_parts();
    let mut out = Vec::new();
    encode(&mut out, &parts, &Added::default());
    assert_eq!(
        String::from_utf8_lossy(&out),
        "POST /p?q=1 HTTP/1.1\r\nhost: app\r\nx-a: b\r\ncontent-length: 0\r\n\r\n"
    );
    parts.method = Method::GET;
    out.clear();
    // usher's added fields come after the map's.
    let mut added = Added::default();
    added.push(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_static("192.0.2.1"),
    );
    added.push(
        HeaderName::from_static("x-forwarded-user"),
        HeaderValue::from_static("alice"),
    );
    encode(&mut out, &parts, &added);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "GET /p?q=1 HTTP/1.1\r\nhost: app\r\nx-a: b\r\nx-forwarded-for: 192.0.2.1\r\nx-forwarded-user: alice\r\n\r\n"
    );
}

#[test]
fn the_fuzz_body_holds_on_hostile_inputs() {
    fuzz(b"");
    fuzz(b"\x00HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\nabc");
    fuzz(b"\x07HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffff\r\nabc");
    fuzz(b"\xffHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    // Repeated and re-cased names, where the fuzz body's other head has
    // its own names.
    fuzz(b"\x00HTTP/1.1 200 OK\r\nServer: x\r\nset-cookie: a\r\nSet-Cookie: b\r\nX-CUSTOM: c\r\n\r\n");
}
