#!/usr/bin/env python3
"""A real WebRTC voice peer (aiortc) that joins a goftgu room's voice through goftgu's GraphQL
signalling only, sends a 440 Hz tone, and proves that it hears the others.

Used by tests/api/voice_webrtc.rs (two of these, one per user); also handy by hand:

    python tests/peers/voice_peer.py --url http://127.0.0.1:8000 --room ROOM_ID --token TOKEN
    python tests/peers/voice_peer.py --url ... --room ROOM_ID --login bob --password '...'

The flow (the playground's voice page, playground/voice.html, speaks the same one):

 1. Sign in: `--token`, or `login` (after `register` with `--register`) over HTTP POST /graphql;
    `me { id }` gives our user id.
 2. Open ws://…/graphql/ws with sub-protocol `graphql-transport-ws`; `connection_init` carries
    `{"Authorization": "Bearer <token>"}`; wait for `connection_ack`. Subscribe
    `voiceSignals(roomId)` and send a `ping`; its `pong` means the server has read the subscribe.
    Server `ping`s are answered with `pong`.
 3. `iceServers` (used as given when non-empty; an empty list means host candidates only, and
    no default STUN server is ever added), then `joinVoice(roomId)`, then
    `chat(id) { voiceParticipants }`.
 4. The newcomer calls: for every other participant already in voice it creates an
    RTCPeerConnection with the tone track and sends `sendSignal(kind: OFFER)`. Whoever is already
    there waits for offers and answers them (`ANSWER`). When two peers join at once both may
    offer ("glare"): the peer whose user id sorts higher is polite and drops its own offer for
    the other's, the lower one ignores the offer it receives. An offer unanswered after
    `--offer-timeout` seconds is made again (a signal sent before the other's subscription was
    live on its instance is not lost for good).
 5. Candidates are trickled: our SDP goes out without its `a=candidate` lines, each candidate
    follows as `ICE_CANDIDATE` and an empty candidate ends them, so the connection depends on
    every kind of signal getting through. Payloads are JSON, as browsers make them:
      OFFER/ANSWER   {"type": "offer"|"answer", "sdp": "..."}
      ICE_CANDIDATE  {"candidate": "candidate:...", "sdpMid": "0", "sdpMLineIndex": 0}
                     ({"candidate": ""} = end of candidates)
      BYE            {}  (the sender hangs up; we close our connection to it)
    Candidates that arrive before the description they belong to wait for it.
 6. Loopback only (the default): aioice leaves 127.0.0.1 out of its host candidates, so the peer
    gathers on 127.0.0.1 alone and ignores remote candidates that are not loopback (or are mDNS
    names); no traffic leaves the machine. `--any-interface` lifts this.
 7. Every `--interval` seconds it prints one JSON line per sample:
      {"event": "stats", "t": 1.5, "user": ID, "peers": {ID: {"state": "connected",
       "packetsReceived": N, "bytesReceived": N, "framesDecoded": N, "level": RMS}}}
    `packetsReceived` is the inbound-rtp audio entry of `getStats()`; aiortc's inbound-rtp has no
    `bytesReceived`, so the receiver counts it as the standard defines it (RTP payload bytes of
    the inbound audio stream). `framesDecoded` and `level` (RMS of the last decoded frame) show
    the audio decodes and is not silence.
 8. Success: for each of `--expect` remote peers, bytesReceived > `--min-bytes` and larger than
    in the previous sample. The peer then raises its hand (`setVoiceState(handRaised: true)`,
    this script's way of saying "I hear everyone") and keeps sending until every peer it heard
    has raised theirs too (read from `voiceParticipants` each sample), or at most `--hold`
    seconds, so nobody hangs up on a peer still counting. Then it sends BYE to each peer, prints
    {"event": "result", "ok": true, ...} and exits 0. Not there within `--timeout` seconds:
    {"event": "result", "ok": false, ...}, exit 1. Any other failure (sign-in, refused
    subscription, GraphQL error): {"event": "error"}, exit 2. The voice seat is left to the
    server's grace period after the socket closes, unless `--leave` calls `leaveVoice` first.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import math
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Awaitable, Callable

import aioice.ice
import websockets
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

TONE_HZ = 440.0
TONE_AMPLITUDE = 8000


def log(args: argparse.Namespace, *parts: Any) -> None:
    if args.verbose:
        print("[peer]", *parts, file=sys.stderr, flush=True)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)


class ToneTrack(AudioStreamTrack):
    """aiortc's paced silent track with a sine tone written into each frame."""

    async def recv(self):  # type: ignore[override]
        frame = await super().recv()
        plane = frame.planes[0]
        rate = frame.sample_rate
        start = int(frame.pts)
        samples = array.array(
            "h",
            (
                int(TONE_AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * (start + i) / rate))
                for i in range(frame.samples)
            ),
        )
        data = samples.tobytes()
        plane.update(data + bytes(plane.buffer_size - len(data)))
        return frame


class GraphQL:
    """GraphQL over HTTP POST (mutations and queries) with the peer's bearer token."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/graphql"
        self.token: str | None = None

    def _post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
        if answer.get("errors"):
            raise RuntimeError(f"GraphQL error: {json.dumps(answer['errors'])}")
        return answer["data"]

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self._post, query, variables)


def split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """The SDP without candidate lines, and the candidates as browser-style init objects."""
    kept: list[str] = []
    found: list[dict[str, Any]] = []
    mline = -1
    mid: str | None = None
    pending: list[tuple[int, str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            pending.append((mline, line[2:]))
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        kept.append(line)
        if mid is not None:
            for index, candidate in pending:
                if index == mline:
                    found.append({"candidate": candidate, "sdpMid": mid, "sdpMLineIndex": mline})
            pending = [(i, c) for i, c in pending if i != mline]
    for index, candidate in pending:
        found.append({"candidate": candidate, "sdpMid": None, "sdpMLineIndex": index})
    return "\r\n".join(kept) + "\r\n", found


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host == "::1"


class Link:
    """Our connection to one remote participant."""

    def __init__(self, pc: RTCPeerConnection, offered: bool) -> None:
        self.pc = pc
        self.offered = offered
        self.offered_at = time.monotonic()
        self.early_candidates: list[dict[str, Any]] = []
        self.bytes_received = 0
        self.frames_decoded = 0
        self.level = 0.0
        self.samples: list[int] = []
        self.tasks: list[asyncio.Task[Any]] = []

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()


class Mesh:
    """One RTCPeerConnection per remote participant; signals in and out as (user, kind, payload)."""

    def __init__(
        self,
        me: str,
        send: Callable[[str, str, str], Awaitable[None]],
        ice_servers: list[RTCIceServer],
        loopback: bool,
        log_fn: Callable[..., None],
    ) -> None:
        self.me = me
        self.send = send
        self.ice_servers = ice_servers
        self.loopback = loopback
        self.log = log_fn
        self.links: dict[str, Link] = {}
        # The last sample from each peer, kept after its connection closes (for the result).
        self.heard: dict[str, dict[str, Any]] = {}

    def _new_link(self, peer: str, offered: bool) -> Link:
        # An explicit list, even empty: with None aiortc would add a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.ice_servers)))
        link = Link(pc, offered)
        pc.addTrack(ToneTrack())
        receiver_seen: set[int] = set()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind != "audio":
                return
            for transceiver in pc.getTransceivers():
                receiver = transceiver.receiver
                if receiver.track is track and id(receiver) not in receiver_seen:
                    receiver_seen.add(id(receiver))
                    count_payload_bytes(receiver, link)
            link.tasks.append(asyncio.ensure_future(drain(track, link)))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self.log(f"{peer}: connection {pc.connectionState}")

        return link

    async def _send_description(self, peer: str, link: Link, kind: str) -> None:
        description = link.pc.localDescription
        sdp, candidates = split_candidates(description.sdp)
        await self.send(peer, kind, json.dumps({"type": description.type, "sdp": sdp}))
        for candidate in candidates:
            await self.send(peer, "ICE_CANDIDATE", json.dumps(candidate))
        await self.send(
            peer,
            "ICE_CANDIDATE",
            json.dumps({"candidate": "", "sdpMid": candidates[0]["sdpMid"] if candidates else "0",
                        "sdpMLineIndex": 0}),
        )

    async def call(self, peer: str) -> None:
        """Offers a connection to `peer` (replacing any we had)."""
        old = self.links.pop(peer, None)
        if old:
            await old.close()
        link = self._new_link(peer, offered=True)
        self.links[peer] = link
        await link.pc.setLocalDescription(await link.pc.createOffer())
        self.log(f"{peer}: OFFER sent")
        await self._send_description(peer, link, "OFFER")

    async def on_signal(self, peer: str, kind: str, payload: str) -> None:
        body = json.loads(payload) if payload else {}
        link = self.links.get(peer)
        self.log(f"{peer}: {kind} received")
        if kind == "OFFER":
            glare = link is not None and link.pc.signalingState == "have-local-offer"
            if glare and self.me < peer:
                self.log(f"{peer}: glare, impolite: ignoring their offer")
                return
            if link:
                self.links.pop(peer, None)
                await link.close()
            link = self._new_link(peer, offered=False)
            self.links[peer] = link
            await link.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
            await self._flush(link)
            await link.pc.setLocalDescription(await link.pc.createAnswer())
            await self._send_description(peer, link, "ANSWER")
        elif kind == "ANSWER":
            if link is None or link.pc.signalingState != "have-local-offer":
                self.log(f"{peer}: stray answer ignored")
                return
            await link.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
            await self._flush(link)
        elif kind == "ICE_CANDIDATE":
            if link is None:
                return
            if link.pc.remoteDescription is None:
                link.early_candidates.append(body)
            else:
                await self._add_candidate(link, body)
        elif kind == "BYE":
            if link:
                self.links.pop(peer, None)
                await link.close()

    async def _flush(self, link: Link) -> None:
        early, link.early_candidates = link.early_candidates, []
        for body in early:
            await self._add_candidate(link, body)

    async def _add_candidate(self, link: Link, body: dict[str, Any] | None) -> None:
        text = (body or {}).get("candidate") or ""
        if not text:
            await link.pc.addIceCandidate(None)
            return
        candidate = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        if self.loopback and not is_loopback(candidate.ip):
            self.log(f"ignoring non-loopback candidate {candidate.ip}")
            return
        candidate.sdpMid = body.get("sdpMid")
        candidate.sdpMLineIndex = body.get("sdpMLineIndex")
        await link.pc.addIceCandidate(candidate)

    async def sample(self) -> dict[str, dict[str, Any]]:
        """One stats sample per link (and remembers the byte counts)."""
        out: dict[str, dict[str, Any]] = {}
        for peer, link in self.links.items():
            packets = 0
            report = await link.pc.getStats()
            for stat in report.values():
                if stat.type == "inbound-rtp" and getattr(stat, "kind", None) == "audio":
                    packets += stat.packetsReceived
            link.samples.append(link.bytes_received)
            out[peer] = {
                "state": link.pc.connectionState,
                "packetsReceived": packets,
                "bytesReceived": link.bytes_received,
                "framesDecoded": link.frames_decoded,
                "level": round(link.level, 1),
            }
            self.heard[peer] = {**out[peer], "samples": list(link.samples)}
        return out

    def hears(self, peer: str, min_bytes: int) -> bool:
        link = self.links.get(peer)
        if not link or len(link.samples) < 2:
            return False
        before, now = link.samples[-2], link.samples[-1]
        return now > min_bytes and now > before

    async def hang_up(self) -> None:
        for peer, link in list(self.links.items()):
            try:
                await self.send(peer, "BYE", "{}")
            except Exception as error:  # the server may be gone already
                self.log(f"{peer}: BYE not sent: {error}")
            await link.close()
        self.links.clear()


def count_payload_bytes(receiver: Any, link: Link) -> None:
    """Counts the inbound RTP payload bytes (what the standard's bytesReceived is) as they arrive."""
    original = receiver._handle_rtp_packet

    async def counting(packet: Any, arrival_time_ms: int) -> None:
        link.bytes_received += len(packet.payload)
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = counting


async def drain(track: MediaStreamTrack, link: Link) -> None:
    """Decodes the remote audio (as a player would), counting frames and measuring the level."""
    try:
        while True:
            frame = await track.recv()
            link.frames_decoded += 1
            pcm = array.array("h", bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)])
            if pcm:
                link.level = math.sqrt(sum(s * s for s in pcm) / len(pcm))
    except (MediaStreamError, asyncio.CancelledError):
        pass


class Signalling:
    """The graphql-transport-ws socket: our voiceSignals subscription, and sendSignal over HTTP."""

    def __init__(self, args: argparse.Namespace, gql: GraphQL) -> None:
        self.args = args
        self.gql = gql
        self.ws: Any = None
        self.incoming: asyncio.Queue[tuple[str, str, str] | Exception] = asyncio.Queue()

    async def open(self) -> None:
        url = self.args.url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self.ws = await websockets.connect(
            url + "/graphql/ws", subprotocols=["graphql-transport-ws"], max_size=1 << 20
        )
        await self.ws.send(json.dumps({"type": "connection_init",
                                       "payload": {"Authorization": f"Bearer {self.gql.token}"}}))
        ack = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        query = ("subscription($r: ID!) { voiceSignals(roomId: $r) "
                 "{ roomId fromUserId kind payload } }")
        await self.ws.send(json.dumps({"id": "signals", "type": "subscribe",
                                       "payload": {"query": query, "variables": {"r": self.args.room}}}))
        await self.ws.send(json.dumps({"type": "ping"}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if message.get("type") == "pong":
                break
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "next" and message.get("id") == "signals":
            payload = message.get("payload", {})
            if payload.get("errors"):
                self.incoming.put_nowait(RuntimeError(f"signal error: {payload['errors']}"))
                return
            signal = payload["data"]["voiceSignals"]
            if signal:
                self.incoming.put_nowait((signal["fromUserId"], signal["kind"], signal["payload"]))
        elif kind in ("error", "complete"):
            self.incoming.put_nowait(RuntimeError(f"voiceSignals ended: {message}"))
        elif kind == "ping":
            asyncio.ensure_future(self.ws.send(json.dumps({"type": "pong"})))

    async def read_forever(self) -> None:
        try:
            async for raw in self.ws:
                self._handle(json.loads(raw))
            self.incoming.put_nowait(RuntimeError("the signalling socket closed"))
        except websockets.ConnectionClosed as error:
            self.incoming.put_nowait(RuntimeError(f"the signalling socket closed: {error}"))

    async def send(self, to: str, kind: str, payload: str) -> None:
        await self.gql(
            "mutation($r: ID!, $to: ID!, $k: SignalKind!, $p: String!) "
            "{ sendSignal(roomId: $r, toUserId: $to, kind: $k, payload: $p) }",
            r=self.args.room, to=to, k=kind, p=payload,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def sign_in(args: argparse.Namespace, gql: GraphQL) -> str:
    if args.token:
        gql.token = args.token
    else:
        if args.register:
            await gql(
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                i={"username": args.login, "email": f"{args.login}@example.com",
                   "password": args.password},
            )
        data = await gql(
            "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            i={"login": args.login, "password": args.password},
        )
        gql.token = data["login"]["accessToken"]
    return (await gql("{ me { id } }"))["me"]["id"]


async def ice_servers(gql: GraphQL) -> list[RTCIceServer]:
    data = await gql("{ iceServers { urls username credential } }")
    return [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in data["iceServers"]
    ]


async def participants(gql: GraphQL, room: str) -> list[str]:
    data = await gql("query($r: ID!) { chat(id: $r) { voiceParticipants { user { id } } } }", r=room)
    return [p["user"]["id"] for p in data["chat"]["voiceParticipants"]]


async def hands_up(gql: GraphQL, room: str) -> set[str]:
    """The participants whose hand is raised."""
    data = await gql(
        "query($r: ID!) { chat(id: $r) { voiceParticipants { user { id } handRaised } } }", r=room
    )
    return {p["user"]["id"] for p in data["chat"]["voiceParticipants"] if p["handRaised"]}


async def run(args: argparse.Namespace) -> int:
    if not args.any_interface:
        # aioice never offers 127.0.0.1 as a host candidate; here it is the only one.
        aioice.ice.get_host_addresses = lambda **_: ["127.0.0.1"]
    gql = GraphQL(args.url)
    me = await sign_in(args, gql)
    signalling = Signalling(args, gql)
    await signalling.open()
    reader = asyncio.ensure_future(signalling.read_forever())
    servers = await ice_servers(gql)
    mesh = Mesh(me, signalling.send, servers, not args.any_interface, lambda *p: log(args, *p))
    await gql("mutation($r: ID!) { joinVoice(roomId: $r) { user { id } } }", r=args.room)
    others = [p for p in await participants(gql, args.room) if p != me]
    log(args, f"me {me}; already in voice: {others}; ice servers: {len(servers)}")
    for peer in others:
        await mesh.call(peer)

    started = time.monotonic()
    next_sample = started + args.interval
    heard_at: float | None = None
    heard_peers: set[str] = set()
    code = 1
    try:
        while True:
            now = time.monotonic()
            if heard_at is not None and now >= heard_at + args.hold:
                log(args, "hold over before every peer raised its hand")
                code = 0
                break
            if now - started > args.timeout:
                break
            try:
                item = await asyncio.wait_for(signalling.incoming.get(), max(0.01, next_sample - now))
            except asyncio.TimeoutError:
                item = None
            if isinstance(item, Exception):
                raise item
            if item is not None:
                await mesh.on_signal(*item)
                continue
            next_sample += args.interval
            peers = await mesh.sample()
            record = {"event": "stats", "t": round(time.monotonic() - started, 2), "user": me,
                      "peers": peers}
            emit(record)
            for peer, link in list(mesh.links.items()):
                stalled = link.offered and link.pc.signalingState == "have-local-offer"
                if stalled and time.monotonic() - link.offered_at > args.offer_timeout:
                    log(args, f"{peer}: no answer, offering again")
                    await mesh.call(peer)
            if heard_at is None:
                heard = [p for p in mesh.links if mesh.hears(p, args.min_bytes)]
                if len(heard) >= args.expect:
                    heard_at, heard_peers = time.monotonic(), set(heard)
                    await gql(
                        "mutation($r: ID!) { setVoiceState(roomId: $r, input: {handRaised: true})"
                        " { handRaised } }",
                        r=args.room,
                    )
            elif heard_peers <= await hands_up(gql, args.room):
                code = 0
                break
    finally:
        await mesh.hang_up()
        if args.leave:
            try:
                await gql("mutation($r: ID!) { leaveVoice(roomId: $r) }", r=args.room)
            except Exception as error:
                log(args, f"leaveVoice failed: {error}")
        reader.cancel()
        await signalling.close()
    emit({"event": "result", "ok": code == 0, "user": me, "peers": mesh.heard,
          "elapsed": round(time.monotonic() - started, 2),
          "reason": None if code == 0 else f"no audio from {args.expect} peer(s) within {args.timeout} s"})
    return code


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--room", required=True, help="the room id")
    p.add_argument("--token", help="an access token (else --login/--password)")
    p.add_argument("--login", help="username or email")
    p.add_argument("--password")
    p.add_argument("--register", action="store_true", help="register --login first")
    p.add_argument("--expect", type=int, default=1, help="remote peers that must be heard")
    p.add_argument("--min-bytes", type=int, default=5000)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between stats samples")
    p.add_argument("--hold", type=float, default=20.0,
                   help="most seconds to keep sending after success, waiting for the others")
    p.add_argument("--offer-timeout", type=float, default=5.0)
    p.add_argument("--leave", action="store_true", help="call leaveVoice before exiting")
    p.add_argument("--any-interface", action="store_true",
                   help="gather on every interface and accept any remote candidate")
    p.add_argument("--verbose", action="store_true", help="log the signalling on stderr")
    args = p.parse_args(argv)
    if not args.token and not (args.login and args.password):
        p.error("give --token, or --login and --password")
    return args


def main() -> int:
    args = parse_args(sys.argv[1:])
    try:
        return asyncio.run(run(args))
    except Exception as error:
        emit({"event": "error", "ok": False, "error": f"{type(error).__name__}: {error}"})
        return 2


if __name__ == "__main__":
    sys.exit(main())
