//! Runtime configuration: clap flags with environment fallbacks, every one optional, so
//! `goftgu` with no arguments serves on 127.0.0.1:8080 from an embedded SQLite file in `./data`.
use std::{fmt, net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};

/// goftgu: one GraphQL API for accounts, chats, rooms with music, and live events.
#[derive(Parser, Clone)]
#[command(name = "goftgu", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GOFTGU_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// The server's public base URL (`https://chat.example.com`, or the proxy's address), put in
    /// front of every link it hands out (files, avatars, tracks) so they work from any origin;
    /// default: the address it listens on.
    #[arg(long, env = "GOFTGU_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Origins allowed to call the API from a browser (comma-separated, e.g.
    /// `https://app.example.com`); default `*`, any origin (identity travels in bearer tokens,
    /// never in cookies).
    #[arg(
        long,
        env = "GOFTGU_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub cors_origins: Vec<String>,

    /// Directory for the embedded database, the generated JWT secret and uploads.
    #[arg(long, env = "GOFTGU_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL (`sqlite://…` or `postgres://…`); default: SQLite file in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Maximum database connections in the pool.
    #[arg(long, env = "GOFTGU_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,

    /// Seconds a request waits for a database connection (or for a new one to open) before it
    /// answers 503 "try again": short, so a database outage is answered quickly.
    #[arg(long, env = "GOFTGU_DB_ACQUIRE_TIMEOUT_SECONDS", default_value_t = 3)]
    pub db_acquire_timeout_seconds: u64,

    /// Seconds a starting instance keeps retrying an unreachable database before it exits;
    /// default: it waits for ever (retrying with backoff, logging every attempt).
    #[arg(long, env = "GOFTGU_DB_STARTUP_WAIT_SECONDS")]
    pub db_startup_wait_seconds: Option<u64>,

    /// Redis URL for the shared event bus and presence across instances; default: in-process.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis channel and key (lets several deployments share one Redis).
    #[arg(long, env = "GOFTGU_REDIS_PREFIX", default_value = "goftgu:")]
    pub redis_prefix: String,

    /// Seconds between WebSocket pings that keep idle connections alive through proxies.
    #[arg(long, env = "GOFTGU_WS_PING_SECONDS", default_value_t = 30)]
    pub ws_ping_seconds: u64,

    /// Most operations (subscriptions) active at once on one WebSocket; one more is refused
    /// with a per-operation `RATE_LIMITED` error and the socket stays open.
    #[arg(
        long,
        env = "GOFTGU_MAX_SUBSCRIPTIONS_PER_SOCKET",
        default_value_t = 100
    )]
    pub max_subscriptions_per_socket: usize,

    /// Most WebSockets one user may hold open on one instance; one more is closed with 1008.
    #[arg(long, env = "GOFTGU_MAX_SOCKETS_PER_USER", default_value_t = 20)]
    pub max_sockets_per_user: usize,

    /// Most WebSockets one instance holds open; one more upgrade is answered 503.
    #[arg(long, env = "GOFTGU_MAX_SOCKETS", default_value_t = 10_000)]
    pub max_sockets: usize,

    /// Seconds a client has to send a request's headers, counted from the connection's start
    /// (or, on a kept-alive connection, from the first byte of the next request).
    #[arg(long, env = "GOFTGU_HEADER_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_timeout_seconds: u64,

    /// Seconds an idle keep-alive connection stays open waiting for its next request.
    #[arg(long, env = "GOFTGU_KEEP_ALIVE_SECONDS", default_value_t = 60)]
    pub keep_alive_seconds: u64,

    /// Seconds a request body may go without a byte arriving; also the grace period before the
    /// minimum body rate applies.
    #[arg(long, env = "GOFTGU_BODY_TIMEOUT_SECONDS", default_value_t = 10)]
    pub body_timeout_seconds: u64,

    /// Slowest accepted average request body rate after the grace period, in bytes per second
    /// (0: no rate check, only the stall bound).
    #[arg(long, env = "GOFTGU_MIN_BODY_BYTES_PER_SECOND", default_value_t = 1024)]
    pub min_body_bytes_per_second: u64,

    /// Most bytes of a refused request's body (an upload without a token, or too big) read and
    /// thrown away so the client, still sending, sees the refusal instead of a reset connection;
    /// a longer body is not read and its connection closes after the answer.
    #[arg(long, env = "GOFTGU_MAX_REFUSED_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_refused_body_bytes: u64,

    /// Seconds a stopping instance (SIGTERM, Ctrl-C) gives requests in flight and its
    /// WebSockets' last words before it drops what is left and exits.
    #[arg(long, env = "GOFTGU_DRAIN_SECONDS", default_value_t = 20)]
    pub drain_seconds: u64,

    /// Secret for signing access tokens; default: generated once and kept in `<data-dir>/jwt_secret`.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "GOFTGU_TOKEN_TTL_SECONDS", default_value_t = 24 * 3600)]
    pub token_ttl_seconds: u64,

    /// Lifetime of a refresh token, in seconds: a session not refreshed for this long ends
    /// (each refresh starts it anew). Access tokens never outlive their session.
    #[arg(
        long,
        env = "GOFTGU_REFRESH_TTL_SECONDS",
        default_value_t = 30 * 24 * 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub refresh_ttl_seconds: u64,

    /// Largest accepted JSON request body for `/graphql`, in bytes.
    #[arg(long, env = "GOFTGU_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Login attempts allowed per login name per minute (more answer RATE_LIMITED; 0 turns the
    /// limit off).
    #[arg(long, env = "GOFTGU_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 10)]
    pub login_attempts_per_minute: u32,

    /// Rate limits per user and per client address.
    #[command(flatten)]
    pub limits: RateLimits,

    /// Voice in rooms: seats, the grace period, signal size and ICE servers.
    #[command(flatten)]
    pub voice: Voice,

    /// Where uploaded files live: an S3-compatible bucket when one is named, else the data
    /// directory.
    #[command(flatten)]
    pub s3: ObjectStorage,

    /// Web Push: the VAPID key and contact, which endpoints are accepted, retries.
    #[command(flatten)]
    pub push: Push,

    /// Link previews: whether they are fetched, from where, how much and for how long.
    #[command(flatten)]
    pub previews: Previews,

    /// Reverse proxies whose `X-Forwarded-For` is believed (IPs or CIDRs, comma-separated);
    /// default: none, the socket's peer is the client.
    #[arg(long, env = "GOFTGU_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Largest accepted upload (images, video, files), in bytes.
    #[arg(long, env = "GOFTGU_MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Largest accepted music upload, in bytes.
    #[arg(long, env = "GOFTGU_MAX_MUSIC_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_music_bytes: usize,

    /// Lifetime of signed download links, in seconds.
    #[arg(long, env = "GOFTGU_LINK_TTL_SECONDS", default_value_t = 3600)]
    pub link_ttl_seconds: u64,

    /// Deepest allowed GraphQL selection.
    #[arg(long, env = "GOFTGU_MAX_QUERY_DEPTH", default_value_t = 15)]
    pub max_query_depth: usize,

    /// Largest allowed GraphQL query complexity (one point per field); also the budget of one
    /// HTTP request: fields after fragment expansion, summed over a batch.
    #[arg(long, env = "GOFTGU_MAX_QUERY_COMPLEXITY", default_value_t = 1000)]
    pub max_query_complexity: usize,

    /// Most operations in one batched HTTP request.
    #[arg(long, env = "GOFTGU_MAX_BATCH_OPERATIONS", default_value_t = 10)]
    pub max_batch_operations: usize,

    /// Answer introspection queries and serve `/schema.graphql` (turn off in production if the
    /// schema is private).
    #[arg(long, env = "GOFTGU_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Suggest field names ("did you mean …") in validation errors.
    #[arg(long, env = "GOFTGU_FIELD_SUGGESTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub field_suggestions: bool,

    /// Serve the GraphiQL page on `GET /graphql`.
    #[arg(long, env = "GOFTGU_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,

    /// How often each instance looks for rooms whose track has ended, to start the queue's next
    /// one (ms). Advancing is exactly-once across instances; this only bounds how late it is.
    #[arg(long, env = "GOFTGU_PLAYBACK_TICK_MS", default_value_t = 500)]
    pub playback_tick_ms: u64,

    /// How often each instance looks for polls whose `closesAt` has passed, to close them (ms).
    /// Closing is exactly-once across instances; this only bounds how late it is.
    #[arg(long, env = "GOFTGU_POLL_TICK_MS", default_value_t = 1000)]
    pub poll_tick_ms: u64,

    /// Longest accepted message, in characters.
    #[arg(long, env = "GOFTGU_MAX_MESSAGE_LENGTH", default_value_t = 4000)]
    pub max_message_length: usize,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "GOFTGU_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Rate limits: each allows `burst` actions at once, then refills at `per_minute` (0 turns the
/// limit off). Defaults fit people: a quick exchange of short messages, a photo dump of 20
/// pictures, an office behind one NAT address signing up a few colleagues.
#[derive(clap::Args, Clone, Debug)]
pub struct RateLimits {
    /// Messages a user may send per minute (sendMessage, forwards count per target, REST file
    /// messages; 0 turns the limit off).
    #[arg(
        long = "limit-send-per-minute",
        env = "GOFTGU_LIMIT_SEND_PER_MINUTE",
        default_value_t = 60
    )]
    pub send_per_minute: u32,
    /// Messages a user may send at once before the per-minute rate applies.
    #[arg(
        long = "limit-send-burst",
        env = "GOFTGU_LIMIT_SEND_BURST",
        default_value_t = 30
    )]
    pub send_burst: u32,
    /// Reaction toggles per user per minute (0 turns the limit off).
    #[arg(
        long = "limit-reactions-per-minute",
        env = "GOFTGU_LIMIT_REACTIONS_PER_MINUTE",
        default_value_t = 60
    )]
    pub reactions_per_minute: u32,
    /// Reaction toggles per user at once.
    #[arg(
        long = "limit-reactions-burst",
        env = "GOFTGU_LIMIT_REACTIONS_BURST",
        default_value_t = 30
    )]
    pub reactions_burst: u32,
    /// setTyping calls per user per minute (0 turns the limit off).
    #[arg(
        long = "limit-typing-per-minute",
        env = "GOFTGU_LIMIT_TYPING_PER_MINUTE",
        default_value_t = 120
    )]
    pub typing_per_minute: u32,
    /// setTyping calls per user at once.
    #[arg(
        long = "limit-typing-burst",
        env = "GOFTGU_LIMIT_TYPING_BURST",
        default_value_t = 30
    )]
    pub typing_burst: u32,
    /// Uploads per user per minute (REST and GraphQL; 0 turns the limit off).
    #[arg(
        long = "limit-uploads-per-minute",
        env = "GOFTGU_LIMIT_UPLOADS_PER_MINUTE",
        default_value_t = 30
    )]
    pub uploads_per_minute: u32,
    /// Uploads per user at once.
    #[arg(
        long = "limit-uploads-burst",
        env = "GOFTGU_LIMIT_UPLOADS_BURST",
        default_value_t = 30
    )]
    pub uploads_burst: u32,
    /// inviteToRoom and addMembers calls per user per minute (0 turns the limit off).
    #[arg(
        long = "limit-invites-per-minute",
        env = "GOFTGU_LIMIT_INVITES_PER_MINUTE",
        default_value_t = 20
    )]
    pub invites_per_minute: u32,
    /// inviteToRoom and addMembers calls per user at once.
    #[arg(
        long = "limit-invites-burst",
        env = "GOFTGU_LIMIT_INVITES_BURST",
        default_value_t = 10
    )]
    pub invites_burst: u32,
    /// Registrations per client address per minute (0 turns the limit off).
    #[arg(
        long = "limit-register-per-minute",
        env = "GOFTGU_LIMIT_REGISTER_PER_MINUTE",
        default_value_t = 1
    )]
    pub register_per_minute: u32,
    /// Registrations per client address at once.
    #[arg(
        long = "limit-register-burst",
        env = "GOFTGU_LIMIT_REGISTER_BURST",
        default_value_t = 10
    )]
    pub register_burst: u32,
    /// Login attempts per client address per minute (beside the per-name limit; 0 turns the
    /// limit off).
    #[arg(
        long = "limit-login-per-minute",
        env = "GOFTGU_LIMIT_LOGIN_PER_MINUTE",
        default_value_t = 30
    )]
    pub login_per_minute: u32,
    /// Login attempts per client address at once.
    #[arg(
        long = "limit-login-burst",
        env = "GOFTGU_LIMIT_LOGIN_BURST",
        default_value_t = 30
    )]
    pub login_burst: u32,
    /// refreshToken calls per client address per minute (0 turns the limit off).
    #[arg(
        long = "limit-refresh-per-minute",
        env = "GOFTGU_LIMIT_REFRESH_PER_MINUTE",
        default_value_t = 30
    )]
    pub refresh_per_minute: u32,
    /// refreshToken calls per client address at once.
    #[arg(
        long = "limit-refresh-burst",
        env = "GOFTGU_LIMIT_REFRESH_BURST",
        default_value_t = 30
    )]
    pub refresh_burst: u32,
    /// WebRTC signals (sendSignal) and voice state updates (setVoiceState) per user per minute;
    /// generous, ICE candidates come in bursts (0 turns the limit off).
    #[arg(
        long = "limit-signals-per-minute",
        env = "GOFTGU_LIMIT_SIGNALS_PER_MINUTE",
        default_value_t = 3000
    )]
    pub signals_per_minute: u32,
    /// WebRTC signals and voice state updates per user at once.
    #[arg(
        long = "limit-signals-burst",
        env = "GOFTGU_LIMIT_SIGNALS_BURST",
        default_value_t = 200
    )]
    pub signals_burst: u32,
}

/// Voice in rooms (mesh WebRTC, signalling through GraphQL).
#[derive(clap::Args, Clone)]
pub struct Voice {
    /// Most participants in one room's voice (every peer connects to every other, so a mesh
    /// does not scale past a handful); one more answers VOICE_FULL.
    #[arg(
        long = "voice-max-participants",
        env = "GOFTGU_VOICE_MAX_PARTICIPANTS",
        default_value_t = 8
    )]
    pub max_participants: u32,
    /// Seconds a participant keeps their seat after their last socket anywhere closed (a
    /// reconnect within it keeps the seat); also how long a seat taken without any socket open
    /// lasts until one opens.
    #[arg(long = "voice-grace", env = "GOFTGU_VOICE_GRACE", default_value_t = 15)]
    pub grace_seconds: u64,
    /// Largest accepted signal payload (SDP or ICE candidate), in bytes.
    #[arg(
        long = "voice-signal-max-bytes",
        env = "GOFTGU_VOICE_SIGNAL_MAX_BYTES",
        default_value_t = 16384
    )]
    pub signal_max_bytes: usize,
    /// STUN server URLs handed to clients by `iceServers` (comma-separated, e.g.
    /// `stun:stun.example.org:3478`).
    #[arg(long = "stun-urls", env = "GOFTGU_STUN_URLS", value_delimiter = ',')]
    pub stun_urls: Vec<String>,
    /// TURN server URLs (comma-separated, e.g. `turn:turn.example.org:3478?transport=udp`);
    /// listed only with a TURN secret, since browsers refuse a TURN server without credentials.
    #[arg(long = "turn-urls", env = "GOFTGU_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// The TURN server's shared secret (coturn `static-auth-secret`, `use-auth-secret`): each
    /// caller gets a time-limited username and credential derived from it.
    #[arg(
        long = "turn-secret",
        env = "GOFTGU_TURN_SECRET",
        hide_env_values = true
    )]
    pub turn_secret: Option<String>,
    /// Lifetime of the TURN credentials `iceServers` hands out, in seconds.
    #[arg(long = "turn-ttl", env = "GOFTGU_TURN_TTL", default_value_t = 24 * 3600)]
    pub turn_ttl_seconds: u64,
}

impl fmt::Debug for Voice {
    /// The TURN secret is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Voice")
            .field("max_participants", &self.max_participants)
            .field("grace_seconds", &self.grace_seconds)
            .field("signal_max_bytes", &self.signal_max_bytes)
            .field("stun_urls", &self.stun_urls)
            .field("turn_urls", &self.turn_urls)
            .field("turn_secret", &self.turn_secret.as_ref().map(|_| "<given>"))
            .field("turn_ttl_seconds", &self.turn_ttl_seconds)
            .finish()
    }
}

/// Link previews: the first http(s) link of a message is fetched (title, description, image,
/// site name) by a background task after it is sent. The server fetches URLs its users write, so
/// only public addresses are reached (after DNS resolution and on every redirect) unless an
/// address and port is allowed here.
#[derive(clap::Args, Clone, Debug)]
pub struct Previews {
    /// Whether link previews are fetched at all.
    #[arg(
        long = "link-previews",
        env = "GOFTGU_LINK_PREVIEWS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub enabled: bool,
    /// `host:port` pairs (names or IP addresses, comma-separated) fetched even at a loopback or
    /// private address; default none (tests, an intranet).
    #[arg(
        long = "link-preview-allow",
        env = "GOFTGU_LINK_PREVIEW_ALLOW",
        value_delimiter = ','
    )]
    pub allow: Vec<String>,
    /// Hosts never fetched (comma-separated; `example.com` also covers its subdomains).
    #[arg(
        long = "link-preview-deny",
        env = "GOFTGU_LINK_PREVIEW_DENY",
        value_delimiter = ','
    )]
    pub deny: Vec<String>,
    /// Most bytes of a page read; the rest is cut off.
    #[arg(
        long = "link-preview-max-bytes",
        env = "GOFTGU_LINK_PREVIEW_MAX_BYTES",
        default_value_t = 512 * 1024
    )]
    pub max_bytes: usize,
    /// Longest a fetch takes, redirects included (ms).
    #[arg(
        long = "link-preview-timeout-ms",
        env = "GOFTGU_LINK_PREVIEW_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub timeout_ms: u64,
}

/// Web Push (RFC 8030, VAPID RFC 8292, payloads encrypted per RFC 8291): notifications of users
/// with no live socket go to their browsers' push services.
#[derive(clap::Args, Clone)]
pub struct Push {
    /// The VAPID private key: the P-256 scalar, 32 bytes base64url (as `web-push
    /// generate-vapid-keys` prints it); default: generated once and kept in
    /// `<data-dir>/vapid_private_key`. Give every instance that shares the database the same key:
    /// browsers subscribed with its public key (`vapidPublicKey`).
    #[arg(
        long = "vapid-private-key",
        env = "GOFTGU_VAPID_PRIVATE_KEY",
        hide_env_values = true
    )]
    pub vapid_private_key: Option<String>,
    /// Who push services may contact about this server's pushes (`mailto:` or `https:`), the
    /// VAPID `sub` claim.
    #[arg(
        long = "vapid-subject",
        env = "GOFTGU_VAPID_SUBJECT",
        default_value = "mailto:admin@localhost"
    )]
    pub vapid_subject: String,
    /// Hosts (names or IP addresses, comma-separated) a push endpoint may name over plain
    /// `http://` and at a loopback or private address; default: none, an endpoint must be
    /// `https://` at a public address (the server POSTs to URLs its users give it). For tests and
    /// a push service on the local network.
    #[arg(
        long = "push-allow-http-hosts",
        env = "GOFTGU_PUSH_ALLOW_HTTP_HOSTS",
        value_delimiter = ','
    )]
    pub allow_http_hosts: Vec<String>,
    /// Most push subscriptions (browsers) per user; registering one more drops the oldest.
    #[arg(
        long = "push-max-subscriptions",
        env = "GOFTGU_PUSH_MAX_SUBSCRIPTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_subscriptions: u64,
    /// Attempts to deliver one push when the push service fails (5xx, 429, no answer) before it
    /// is given up.
    #[arg(
        long = "push-max-attempts",
        env = "GOFTGU_PUSH_MAX_ATTEMPTS",
        default_value_t = 6,
        value_parser = clap::value_parser!(i32).range(1..)
    )]
    pub max_attempts: i32,
    /// Wait before the first retry, in ms; it doubles with every failed attempt (at most an hour).
    #[arg(
        long = "push-retry-base-ms",
        env = "GOFTGU_PUSH_RETRY_BASE_MS",
        default_value_t = 10_000
    )]
    pub retry_base_ms: u64,
    /// How often each instance looks for pushes that are due (ms).
    #[arg(
        long = "push-tick-ms",
        env = "GOFTGU_PUSH_TICK_MS",
        default_value_t = 1000
    )]
    pub tick_ms: u64,
}

impl fmt::Debug for Push {
    /// The VAPID private key is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field(
                "vapid_private_key",
                &if self.vapid_private_key.is_some() {
                    "<given>"
                } else {
                    "<generated file>"
                },
            )
            .field("vapid_subject", &self.vapid_subject)
            .field("allow_http_hosts", &self.allow_http_hosts)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("tick_ms", &self.tick_ms)
            .finish()
    }
}

/// Files on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, Garage, …): every instance
/// reads and writes the same bucket, so a file uploaded through one downloads through any.
#[derive(clap::Args, Clone)]
pub struct ObjectStorage {
    /// The bucket that holds uploaded files; turns object storage on (default: files live under
    /// `<data-dir>/files`). The bucket must exist.
    #[arg(long = "s3-bucket", env = "GOFTGU_S3_BUCKET")]
    pub bucket: Option<String>,
    /// The S3 endpoint, e.g. `http://127.0.0.1:9000` (addressed path-style,
    /// `<endpoint>/<bucket>/<key>`; `http://` is allowed); default: AWS's endpoint of the region.
    #[arg(long = "s3-endpoint", env = "GOFTGU_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The bucket's region.
    #[arg(
        long = "s3-region",
        env = "GOFTGU_S3_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Access key id; default: the usual AWS_* variables or the instance's role.
    #[arg(long = "s3-access-key-id", env = "GOFTGU_S3_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// Secret access key (with the access key id).
    #[arg(
        long = "s3-secret-access-key",
        env = "GOFTGU_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
    /// Prefix of every object key (a folder in the bucket, e.g. `goftgu/`), so several
    /// deployments can share one bucket.
    #[arg(long = "s3-prefix", env = "GOFTGU_S3_PREFIX", default_value = "")]
    pub prefix: String,
}

impl fmt::Debug for ObjectStorage {
    /// The secret access key is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<given>"),
            )
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// An IP address (one host) or a CIDR block.
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR block"))
}

/// Log output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the binary does; serving is the default.
#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the GraphQL schema (SDL) to stdout: `goftgu print-schema > schema.graphql`.
    PrintSchema,
    /// Grant (or with --revoke, take away) staff rights to a user, by username or email.
    Staff {
        /// Username or email of the user.
        identifier: String,
        /// Take staff rights away instead of granting them.
        #[arg(long)]
        revoke: bool,
    },
}

impl Config {
    /// The socket address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The base of every link handed out, without a trailing slash: `GOFTGU_PUBLIC_URL`, or
    /// (once `serve_on` ran) the address the server listens on.
    pub fn public_base(&self) -> &str {
        self.public_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/')
    }

    /// Makes the bound address the public base when none was given. An unspecified address
    /// (`0.0.0.0`, `::`) is reached as `localhost` on the same port.
    pub fn serve_on(&mut self, bound: SocketAddr) {
        if self.public_url.is_some() {
            return;
        }
        let bound = if bound.ip().is_unspecified() {
            format!("localhost:{}", bound.port())
        } else {
            bound.to_string()
        };
        self.public_url = Some(format!("http://{bound}"));
    }

    /// The database URL in use: the given one, or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("goftgu.db").display()
            ),
        }
    }

    /// Whether the database is SQLite (embedded) rather than a server.
    pub fn is_sqlite(&self) -> bool {
        self.effective_database_url().starts_with("sqlite:")
    }
}

/// Hides the password part of a URL (`scheme://user:secret@host` → `scheme://user:***@host`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl fmt::Debug for Config {
    /// Printed once at start-up: secrets are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen_addr())
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(&self.effective_database_url()))
            .field("db_max_connections", &self.db_max_connections)
            .field(
                "db_acquire_timeout_seconds",
                &self.db_acquire_timeout_seconds,
            )
            .field("db_startup_wait_seconds", &self.db_startup_wait_seconds)
            .field("redis", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("ws_ping_seconds", &self.ws_ping_seconds)
            .field(
                "max_subscriptions_per_socket",
                &self.max_subscriptions_per_socket,
            )
            .field("max_sockets_per_user", &self.max_sockets_per_user)
            .field("max_sockets", &self.max_sockets)
            .field("header_timeout_seconds", &self.header_timeout_seconds)
            .field("keep_alive_seconds", &self.keep_alive_seconds)
            .field("body_timeout_seconds", &self.body_timeout_seconds)
            .field("min_body_bytes_per_second", &self.min_body_bytes_per_second)
            .field("drain_seconds", &self.drain_seconds)
            .field(
                "jwt_secret",
                &if self.jwt_secret.is_some() {
                    "<given>"
                } else {
                    "<generated file>"
                },
            )
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("refresh_ttl_seconds", &self.refresh_ttl_seconds)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("login_attempts_per_minute", &self.login_attempts_per_minute)
            .field("limits", &self.limits)
            .field("voice", &self.voice)
            .field("s3", &self.s3)
            .field("push", &self.push)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("max_music_bytes", &self.max_music_bytes)
            .field("link_ttl_seconds", &self.link_ttl_seconds)
            .field("max_query_depth", &self.max_query_depth)
            .field("max_query_complexity", &self.max_query_complexity)
            .field("max_batch_operations", &self.max_batch_operations)
            .field("introspection", &self.introspection)
            .field("field_suggestions", &self.field_suggestions)
            .field("graphiql", &self.graphiql)
            .field("max_message_length", &self.max_message_length)
            .field("log_format", &self.log_format)
            .finish()
    }
}
