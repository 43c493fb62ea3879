//! The `usher` binary: parse the command line, set up logging, load the
//! configuration, bind, and call into the library. The only place that
//! exits or reads the process environment.

#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tokio::net::TcpListener;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;
use usher::Config;
use usher::cli::{CONFIG_ENV, Cli, Command, SessionCommand};
use usher::config::LogFormat;
use usher::inspect::{self, Decoded};

/// Bad usage or bad configuration (sysexits `EX_USAGE`); nothing was bound.
const EXIT_USAGE: u8 = 64;
/// A failure at run time.
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    // One crypto provider for every rustls configuration in the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match cli.command {
        Command::Check { config, online } => check(&config.resolve(std::env::var_os(CONFIG_ENV)), online),
        Command::Run(arg) => run(&arg.resolve(std::env::var_os(CONFIG_ENV))),
        Command::Demo {
            listen,
            oidc,
            oidc_client_id,
        } => demo(
            listen,
            oidc.map(|issuer| usher::demo::DemoOidc {
                issuer,
                client_id: oidc_client_id,
                secret: env_var("USHER_OIDC_DEMO_SECRET"),
            }),
        ),
        Command::GenSecret => gen_secret(),
        Command::GenApiKey => gen_api_key(),
        Command::Healthcheck { url } => healthcheck(&url),
        Command::HashPassword => hash_password(),
        Command::Session(SessionCommand::Decode { config, cookie }) => {
            decode(&config.resolve(std::env::var_os(CONFIG_ENV)), &cookie)
        }
        Command::Session(SessionCommand::Encode { config, json }) => {
            encode(&config.resolve(std::env::var_os(CONFIG_ENV)), &json)
        }
        Command::Session(SessionCommand::List { config, user }) => {
            sessions(&config.resolve(std::env::var_os(CONFIG_ENV)), None, &user)
        }
        Command::Session(SessionCommand::Revoke { config, user, id }) => {
            let what = match (user, id) {
                (Some(user), _) => usher::store::Revoke::User(user),
                (None, Some(id)) => usher::store::Revoke::Id(id),
                (None, None) => return ExitCode::from(EXIT_USAGE),
            };
            sessions(&config.resolve(std::env::var_os(CONFIG_ENV)), Some(what), "")
        }
    }
}

/// `usher session encode` with the Redis store: the session is stored, and
/// the cookie printed names it (for load tests and backend tests).
fn encode_stored(config: &Config, redis: usher::config::store::Redis, json: &str, now: u64) -> ExitCode {
    let payload = match inspect::session_object(json, now) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("usher: {why}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let session = config.session.clone();
    block_on(NonZeroUsize::new(1), async move {
        let store = match connect_store(&redis, session.longest_life()).await {
            Ok(store) => store,
            Err(code) => return code,
        };
        let meta = usher::store::Meta {
            user: payload.get("user").and_then(|v| v.as_str()).unwrap_or(""),
            ip: std::net::IpAddr::from([127, 0, 0, 1]),
            user_agent: "usher session encode",
        };
        match store.create(&payload, meta, now, session.max_age).await {
            Ok(sid) => {
                let cookie = usher::store::id_payload(&sid, &payload);
                println!(
                    "{}",
                    session.format.seal(session.cookie.name(), &cookie, now, &session.keys)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("usher: {e}");
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    })
}

/// The configured Redis store, connected (the command line's commands).
async fn connect_store(
    redis: &usher::config::store::Redis,
    longest: std::time::Duration,
) -> Result<usher::store::RedisStore, ExitCode> {
    let store = usher::store::RedisStore::new(redis, longest, Default::default()).map_err(|e| {
        eprintln!("usher: {e}");
        ExitCode::from(EXIT_RUNTIME)
    })?;
    store.start();
    // Reconnects back off up to 5 s: give the first connection that long.
    if let Err(e) = store
        .wait_connected(redis.timeout.max(std::time::Duration::from_secs(5)))
        .await
    {
        eprintln!("usher: cannot reach the session store ({}): {e}", redis.servers[0]);
        return Err(ExitCode::from(EXIT_RUNTIME));
    }
    Ok(store)
}

/// `usher session list|revoke`: straight to the configured Redis store,
/// printing the admin endpoints' JSON.
fn sessions(path: &Path, revoke: Option<usher::store::Revoke>, user: &str) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(redis) = config.session.store.redis().cloned() else {
        eprintln!("usher: {}", usher::store::NEEDS_REDIS);
        return ExitCode::from(EXIT_RUNTIME);
    };
    let user = user.to_string();
    let longest = config.session.longest_life();
    block_on(NonZeroUsize::new(1), async move {
        let store = match connect_store(&redis, longest).await {
            Ok(store) => store,
            Err(code) => return code,
        };
        let doc = match &revoke {
            Some(what) => usher::store::revoke_doc(&store, what).await,
            None => usher::store::list_doc(&store, &user).await,
        };
        match doc {
            Ok(doc) => {
                println!("{doc}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("usher: {e}");
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    })
}

/// Read the password without echo from a terminal, or a line from a pipe.
fn hash_password() -> ExitCode {
    use std::io::IsTerminal;
    let read = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ").and_then(|first| {
            let again = rpassword::prompt_password("Again: ")?;
            Ok(if first == again { Some(first) } else { None })
        })
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map(|_| Some(line.trim_end_matches(['\r', '\n']).to_string()))
    };
    let password = match read {
        Ok(Some(p)) if !p.is_empty() => p,
        Ok(Some(_)) => {
            eprintln!("usher: the password is empty");
            return ExitCode::from(EXIT_USAGE);
        }
        Ok(None) => {
            eprintln!("usher: the passwords differ");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("usher: cannot read the password: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match usher::users::hash_password(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("usher: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn gen_secret() -> ExitCode {
    match usher::session::key::generate() {
        Ok(key) => {
            println!("{key}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("usher: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `usher gen-api-key`: the key once (it is not stored anywhere), then
/// what to paste into the config.
fn gen_api_key() -> ExitCode {
    match usher::auth::machine::generate() {
        Ok((key, id, hash)) => {
            println!("{key}");
            println!();
            println!("[[api_keys]]");
            println!("name = \"\"          # the sessions' user, e.g. \"ci-deploy\"");
            println!("id = \"{id}\"");
            println!("key_hash = \"{hash}\"");
            println!("groups = []");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("usher: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn encode(path: &Path, json: &str) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = usher::service::unix_now();
    if let Some(redis) = config.session.store.redis().cloned() {
        return encode_stored(&config, redis, json, now);
    }
    match inspect::encode(&config.session, json, now) {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("usher: {why}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn decode(path: &Path, cookie: &str) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match inspect::decode(&config.session, cookie, usher::service::unix_now()) {
        Decoded::Valid(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Decoded::Rejected(reason) => {
            println!("rejected ({}): {reason}", reason.as_str());
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Help and version go to stdout with 0; anything else is bad usage.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_USAGE),
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path, &env_var).map_err(|e| {
        eprintln!("usher: {}: {e}", path.display());
        ExitCode::from(EXIT_USAGE)
    })
}

fn check(path: &Path, online: bool) -> ExitCode {
    match load(path) {
        Ok(config) => {
            // Certificates and CA files are read now, as `run` would.
            if let Err(e) = usher::live::Live::build(config.clone(), Default::default()) {
                eprintln!("usher: {}: {e}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
            println!("{}: ok\n{}", path.display(), config.summary());
            for w in &config.warnings {
                println!("warning: {w}");
            }
            if online {
                return block_on(None, async move {
                    let providers = check_providers(&config).await;
                    let store = check_store(&config).await;
                    if providers && store {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(EXIT_RUNTIME)
                    }
                });
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    init_logging(config.log);
    for w in &config.warnings {
        warn!("{w}");
    }
    let path = path.to_path_buf();
    block_on(config.server.worker_threads, async move {
        let proxy = match bind(config.server.listen, config.server.backlog, "usher listening").await {
            Ok(l) => l,
            Err(code) => return code,
        };
        let admin = match config.admin {
            Some(addr) => match bind(addr, None, "admin listening").await {
                Ok(l) => Some(l),
                Err(code) => return code,
            },
            None => None,
        };
        let (reload_tx, reloads) = tokio::sync::mpsc::channel(1);
        tokio::spawn(reload_on_sighup(path, reload_tx));
        let listeners = usher::Listeners { proxy, admin };
        exit_code(usher::serve(config, listeners, shutdown_signal(), reloads).await)
    })
}

/// On each SIGHUP, load the config file again and hand it over; a bad one
/// is logged and the running configuration stays.
async fn reload_on_sighup(path: PathBuf, reloads: tokio::sync::mpsc::Sender<Config>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            warn!("cannot listen for SIGHUP; reloads are off");
            return;
        };
        while hup.recv().await.is_some() {
            info!(path = %path.display(), "SIGHUP: reloading the configuration");
            // Loading hashes a decoy password (Argon2 or bcrypt, tens to
            // hundreds of ms): on a blocking thread, so that a
            // single-threaded runtime keeps serving meanwhile.
            let file = path.clone();
            let loaded = tokio::task::spawn_blocking(move || Config::load(&file, &env_var));
            match loaded.await {
                Ok(Ok(config)) => {
                    if reloads.send(config).await.is_err() {
                        return;
                    }
                }
                Ok(Err(e)) => error!("reload refused, keeping the running configuration: {e}"),
                Err(e) => error!("reload failed, keeping the running configuration: {e}"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, reloads);
}

fn demo(listen: SocketAddr, oidc: Option<usher::demo::DemoOidc>) -> ExitCode {
    init_logging(LogFormat::Human);
    block_on(None, async move {
        let listener = match bind(listen, None, "usher listening").await {
            Ok(l) => l,
            Err(code) => return code,
        };
        let shown = listener.local_addr().unwrap_or(listen);
        println!(
            "usher demo: open http://{shown}/ and press \"Sign in as demo\", or sign in at\n\
             http://{shown}/.usher/login as {} / {}.\n\
             The app behind usher never sees a cookie: it gets your session as headers.",
            usher::demo::DEMO_USER.0,
            usher::demo::DEMO_USER.1,
        );
        if let Some(o) = &oidc {
            println!(
                "Sign-in with {} is offered too: register http://{shown}/.usher/oidc/demo/callback for client {:?}.",
                o.issuer, o.client_id
            );
        }
        exit_code(usher::demo::run(listener, oidc, shutdown_signal()).await)
    })
}

/// Run `fut` on a fresh runtime with `workers` threads (`None`: one per
/// CPU this process may use). With one, the runtime is single-threaded:
/// the process then has one thread while it serves, which costs less CPU
/// per request than a lone worker beside the main thread (atomics in the
/// scheduler, and the kernel's per-call work for a shared file table).
/// Blocking work (`spawn_blocking`) gets its own threads either way.
fn block_on(workers: Option<NonZeroUsize>, fut: impl Future<Output = ExitCode>) -> ExitCode {
    let threads = usher::per_cpu(workers);
    let built = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads).enable_all().build()
    };
    match built {
        Ok(rt) => {
            info!(threads, "async runtime started");
            rt.block_on(fut)
        }
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Bind with a listen queue of `backlog` (default: the kernel's
/// `somaxconn`, else 1024) and log the address actually bound (port 0
/// becomes a real port).
async fn bind(addr: SocketAddr, backlog: Option<u32>, what: &'static str) -> Result<TcpListener, ExitCode> {
    let backlog = backlog.unwrap_or_else(default_backlog);
    match listen(addr, backlog) {
        Ok(listener) => {
            let bound = listener
                .local_addr()
                .map_or_else(|_| addr.to_string(), |a| a.to_string());
            info!(listen = %bound, backlog, "{what}");
            Ok(listener)
        }
        Err(e) => {
            error!(error = %e, listen = %addr, "cannot bind");
            Err(ExitCode::from(EXIT_RUNTIME))
        }
    }
}

fn exit_code(served: anyhow::Result<()>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = format!("{e:#}"), "usher stopped");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into a file or a
    // log collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.fmt_fields(usher::logfmt::human_fields()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's and tokio's own `bind` do: a restart can take the port
    // while old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The kernel's cap on listen queues (`net.core.somaxconn`), else 1024.
fn default_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1024)
}

/// `usher healthcheck`: GET the URL; 0 on 200, 1 otherwise.
fn healthcheck(url: &str) -> ExitCode {
    let uri: http::Uri = match url.parse::<http::Uri>() {
        Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => u,
        _ => {
            eprintln!(
                "usher: --url must be an http URL with a host, such as http://127.0.0.1:9090/healthz; got {url:?}"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let target = uri.authority().map_or_else(String::new, ToString::to_string);
    block_on(NonZeroUsize::new(1), async move {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Empty<bytes::Bytes>>();
        match tokio::time::timeout(std::time::Duration::from_secs(5), client.get(uri)).await {
            Ok(Ok(res)) if res.status() == http::StatusCode::OK => ExitCode::SUCCESS,
            Ok(Ok(res)) => {
                eprintln!("usher: {url} answered {}", res.status());
                ExitCode::from(EXIT_RUNTIME)
            }
            Ok(Err(e)) => {
                eprintln!("usher: {}", plain_failure(&e, &target));
                ExitCode::from(EXIT_RUNTIME)
            }
            Err(_) => {
                eprintln!("usher: {url} did not answer within 5s");
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    })
}

/// What went wrong reaching `target`, in words: the innermost cause
/// ("nothing listening on 127.0.0.1:9090"), not hyper's "client error
/// (Connect)".
fn plain_failure(e: &(dyn std::error::Error + 'static), target: &str) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut deepest = e;
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return format!("nothing listening on {target}"),
                std::io::ErrorKind::TimedOut => return format!("{target} did not accept a connection in time"),
                _ => {}
            }
        }
        deepest = c;
        cause = c.source();
    }
    format!("could not reach {target}: {deepest}")
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    info!("shutdown requested");
}

/// `usher check --online`: the Redis store answers (whether a connection comes
/// up within 5 s or the store timeout, and a session can be looked up).
async fn check_store(config: &Config) -> bool {
    let Some(redis) = config.session.store.redis() else {
        return true;
    };
    let store = match connect_store(redis, config.session.longest_life()).await {
        Ok(store) => store,
        Err(_) => return false,
    };
    let probe = usher::store::new_sid().unwrap_or_default();
    match store.load(&probe).await {
        Ok(_) => {
            println!("session store: ok, {} reachable", redis.servers[0]);
            true
        }
        Err(e) => {
            println!("session store: cannot be used: {e}");
            false
        }
    }
}

/// `usher check --online`: discover each provider now and report whether
/// all can be used.
async fn check_providers(config: &Config) -> bool {
    if config.oidc.is_empty() {
        return true;
    }
    let metrics = std::sync::Arc::new(usher::metrics::Metrics::new());
    let providers = match usher::oidc::Providers::new(&config.oidc, &metrics) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("usher: {e}");
            return false;
        }
    };
    let mut ok = true;
    for p in providers.iter() {
        let id = &p.config.id;
        match p.discover().await {
            Ok(known) => {
                let m = &known.metadata;
                let algs: Vec<String> = m.algorithms.iter().map(|a| format!("{a:?}")).collect();
                println!(
                    "oidc {id}: ok, issuer {}
  authorization {}
  token {}
  userinfo {}
  end_session {}
                       ID-token algorithms {}; iss in responses: {}
  keys {}: {}",
                    m.issuer,
                    m.authorization_endpoint,
                    m.token_endpoint,
                    m.userinfo_endpoint.as_deref().unwrap_or("(none)"),
                    m.end_session_endpoint
                        .as_deref()
                        .unwrap_or("(none: provider_logout cannot work)"),
                    algs.join(", "),
                    if m.iss_parameter { "yes" } else { "no" },
                    known.keys.len(),
                    known.keys.kids().join(", ")
                );
            }
            Err(why) => {
                ok = false;
                println!("oidc {id}: cannot be used: {why}");
            }
        }
    }
    ok
}

/// The process environment, for the configuration's secrets.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
