//! The integration suite: one binary, real sockets on 127.0.0.1 port 0.

mod support; // spawn_proxy, spawn_echo_upstream and friends

mod browser; // headless Chromium signs in through the page (screenshots kept)
mod bypass; // hostile spellings of protected paths: refused or decided as forwarded
mod cli; // the binary: exit codes, config error reporting
mod demo; // `usher demo` end to end: sign-in, cart, preferences, login page
mod faults; // slow uploads, stalled bodies on either side
mod forward_auth; // /.usher/auth decisions in-process, absolute rd allow-list
mod forwarding; // what the upstream sees: methods, bodies, hosts, X-Forwarded-*
mod front_proxies; // the same check behind real nginx, Caddy and Traefik, from docs/forward-auth
mod fuzz_corpus; // the fuzz targets' bodies over fuzz/corpus and fuzz/artifacts
mod hardening; // issue 15's regressions: methods, case, upgrades, HTTP/2 limits, hygiene, cookies
mod keepalive; // plain HTTP/1.1 between requests: reuse, pipelining, unread bodies, idle limits
mod login; // sign-in journeys, brute-force limits, htpasswd, cross-site guard
mod machine; // the identity assertion verified by PyJWT, API keys, Basic, which Authorization reaches the app
mod migrate; // real FastAPI and Flask apps behind usher share their session cookie
mod oidc; // sign-in through the real oidc-provider peer: journeys, attacks, bearer tokens, rotation, outages
mod ops; // the real binary: SIGTERM drain, SIGHUP reload, admin, metrics, logs
mod pages; // refusals as HTML for browsers, JSON for API clients
mod redis_peer; // real redis-server processes and a 3-master Redis Cluster on loopback
mod session; // cookie-jar journeys: backend writes, carts, sign-out, bad cookies
mod spoof; // the strip-then-inject matrix: no client value ever reaches the upstream
mod store; // server-side sessions on real Redis: replicas, revocation, outages, Cluster, removed users
mod streaming; // 200 MB each way through the real binary, RSS bounded
mod target; // malformed and ambiguous request targets on the wire
mod tls; // HTTPS in (h1, h2, keep-alive, pipelining, WebSocket) and out (custom CA), certificates from rcgen
mod upstream_failures; // 502 and 504, JSON or HTML
mod upstream_pool; // upstream keep-alive: reuse, closes, abandoned bodies
mod upstream_wire; // usher's own HTTP/1.1 exchange against scripted bytes: framing, refusals, retries
mod websocket; // Upgrade tunnelled end to end
