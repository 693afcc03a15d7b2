//! Two real WebRTC peers (aiortc, `tests/peers/voice_peer.py`) join a room's voice through
//! goftgu's GraphQL signalling only (`voiceSignals` on the WebSocket, `sendSignal` over HTTP),
//! connect on loopback and exchange audio: each receiver's inbound audio byte count grows. With
//! PostgreSQL + Redis the two peers use two different instances.
//!
//! The peers' Python comes from GOFTGU_TEST_PEERS_PYTHON (`bash .ci/peers` makes the venv and
//! prints its interpreter; `.ci/run` exports it). When it is set the peers must run and succeed;
//! when it is unset (a plain `cargo test`) these tests say they were skipped and why.
use std::{
    io::Read,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::{
    cluster::{services, spawn_pair_with},
    fixtures::{create_room, join_room},
    helpers::{TestApp, spawn_app_with},
};

/// What a receiver must have counted from the other peer (the peer's own threshold too).
const MIN_BYTES: u64 = 5000;

/// The peers' interpreter, or `None` with a line saying why the test does not run.
fn peers_python() -> Option<String> {
    match std::env::var("GOFTGU_TEST_PEERS_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            eprintln!(
                "voice WebRTC test skipped: GOFTGU_TEST_PEERS_PYTHON is not set (`bash .ci/peers` \
                 installs aiortc into target/peers-venv and prints the interpreter to set it to)"
            );
            None
        }
    }
}

/// Seats outlive the peers' sockets for the whole test, so the check after they exit is not a
/// race against the grace period.
fn long_grace(config: &mut goftgu::Config) {
    config.voice.grace_seconds = 3600;
}

/// One side of the call: the instance it talks to and who it is.
struct Side<'a> {
    app: &'a TestApp,
    user_id: String,
    token: String,
}

/// A running peer process; killed if the test ends before it does. Its output is read on
/// blocking threads as it comes, so a full pipe never stalls it.
struct Peer {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_string(&mut text).ok();
        }
        text
    })
}

/// Starts a peer for `side` in `room`.
fn start_peer(python: &str, side: &Side<'_>, room: &str) -> Peer {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/voice_peer.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(["--url", &side.app.address, "--room", room])
        .args([
            "--token",
            &side.token,
            "--min-bytes",
            &MIN_BYTES.to_string(),
        ])
        .args(["--timeout", "60", "--verbose"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("GOFTGU_TEST_PEERS_PYTHON={python} cannot run: {e}"));
    Peer {
        stdout: read_all(child.stdout.take()),
        stderr: read_all(child.stderr.take()),
        child,
    }
}

/// Waits for a peer (it gives up by itself after its `--timeout`), asserts it exited 0, and
/// returns its JSON lines.
async fn finished(mut peer: Peer, who: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = peer.child.try_wait().expect("peer status") {
            break status;
        }
        assert!(Instant::now() < deadline, "{who}'s peer still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stdout = (&mut peer.stdout).await.expect("peer stdout");
    let stderr = (&mut peer.stderr).await.expect("peer stderr");
    assert!(
        status.success(),
        "{who}'s peer failed ({status}):\n{stdout}\n--- stderr ---\n{stderr}"
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

/// Asserts the peer's lines show audio from `from` arriving: the inbound byte count passed the
/// threshold and kept growing, and the decoded audio is not silence.
fn assert_heard(lines: &[Value], from: &str, who: &str) {
    let result = lines
        .iter()
        .rfind(|line| line["event"] == "result")
        .unwrap_or_else(|| panic!("{who}'s peer printed no result: {lines:?}"));
    assert_eq!(result["ok"], true, "{who}: {result}");
    let bytes: Vec<u64> = lines
        .iter()
        .filter(|line| line["event"] == "stats")
        .filter_map(|line| line["peers"][from]["bytesReceived"].as_u64())
        .collect();
    let last = *bytes.last().unwrap_or(&0);
    assert!(last > MIN_BYTES, "{who} received {bytes:?} from {from}");
    assert!(
        bytes.windows(2).any(|w| w[1] > w[0] && w[0] > 0),
        "{who}'s count from {from} grew between samples: {bytes:?}"
    );
    eprintln!("{who} heard {from}: inbound audio bytes per sample {bytes:?}");
    let heard = &result["peers"][from];
    assert!(heard["framesDecoded"].as_u64() > Some(0), "{who}: {result}");
    assert!(
        heard["level"].as_f64() > Some(100.0),
        "{who} decoded a tone, not silence: {result}"
    );
}

/// The room's voice participants as (id, hand raised), sorted, as `token` sees them on `app`.
async fn voice_participants(app: &TestApp, token: &str, room: &str) -> Vec<(String, bool)> {
    let data = app
        .gql_ok(
            Some(token),
            "query($r: ID!) { chat(id: $r) { voiceParticipants { user { id } handRaised } } }",
            json!({ "r": room }),
        )
        .await;
    let mut seats: Vec<(String, bool)> = data["chat"]["voiceParticipants"]
        .as_array()
        .expect("voiceParticipants")
        .iter()
        .map(|p| {
            let id = p["user"]["id"].as_str().unwrap().to_string();
            (id, p["handRaised"].as_bool().unwrap())
        })
        .collect();
    seats.sort();
    seats
}

/// Runs a peer for each side at once; both must hear the other, and both must be voice
/// participants afterwards on either instance, hands raised.
async fn call(python: &str, room: &str, a: Side<'_>, b: Side<'_>) {
    let (peer_a, peer_b) = (start_peer(python, &a, room), start_peer(python, &b, room));
    let (lines_a, lines_b) = tokio::join!(finished(peer_a, "a"), finished(peer_b, "b"));
    assert_heard(&lines_a, &b.user_id, "a");
    assert_heard(&lines_b, &a.user_id, "b");

    // Seated still (their sockets closed within the grace period), each with the hand a peer
    // raises once it hears everyone.
    let mut both = vec![(a.user_id.clone(), true), (b.user_id.clone(), true)];
    both.sort();
    for side in [&a, &b] {
        assert_eq!(voice_participants(side.app, &side.token, room).await, both);
    }
}

#[tokio::test]
async fn two_webrtc_peers_join_a_rooms_voice_and_hear_each_other() {
    let Some(python) = peers_python() else { return };
    let (app, _dir) = spawn_app_with(long_grace).await;
    let owner = app.register("voiceowner").await;
    let member = app.register("voicemember").await;
    let room = create_room(&app, &owner.token, "voice", false).await;
    join_room(&app, &member.token, &room).await;

    let a = Side {
        app: &app,
        user_id: owner.id,
        token: owner.token,
    };
    let b = Side {
        app: &app,
        user_id: member.id,
        token: member.token,
    };
    call(&python, &room, a, b).await;
}

#[tokio::test]
async fn two_webrtc_peers_on_two_instances_hear_each_other() {
    let Some(redis_url) = services() else { return };
    let Some(python) = peers_python() else { return };
    let (a, b, _dirs) = spawn_pair_with(&redis_url, long_grace).await;
    let owner = a.register("voiceowner").await;
    let member = b.register("voicemember").await;
    let room = create_room(&a, &owner.token, "voice", false).await;
    join_room(&b, &member.token, &room).await;

    let on_a = Side {
        app: &a,
        user_id: owner.id,
        token: owner.token,
    };
    let on_b = Side {
        app: &b,
        user_id: member.id,
        token: member.token,
    };
    call(&python, &room, on_a, on_b).await;
}
