"""The round trip a user makes, through nginx only: deploy/cluster.sh smoke runs it.

register two users -> create a group -> subscribe chatEvents on two WebSockets (graphql-transport-ws;
round robin puts them on both instances) -> send messages (answered by both instances) and receive
every one live, in order, on both sockets -> upload a file (POST /api/upload, multipart) -> download
it through its signed link and with a token several times (both instances serve it: the bytes are
in the shared bucket), whole and with Range (206) -> /healthz, /readyz, /metrics answer.

Usage: python deploy/smoke.py http://127.0.0.1:<nginx port>   (needs `websockets`)
Exits non-zero with a message saying what failed.
"""

import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

from websockets.asyncio.client import connect

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
WS = "ws" + BASE[len("http") :] + "/graphql/ws"
# How long one live event may take to arrive before the smoke gives up.
LIVE_TIMEOUT = 15
STARTED = time.monotonic()


class Failure(Exception):
    pass


def step(text):
    print(f"smoke [{time.monotonic() - STARTED:5.1f} s] {text}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


def http(method, path, body=None, headers=None):
    """(status, headers, body bytes) of one request through nginx."""
    request = urllib.request.Request(BASE + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def served_by(headers):
    return headers.get("X-Served-By", "?")


def graphql(query, variables=None, token=None):
    """data of one operation; (data, the answering instance)."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    status, response_headers, raw = http("POST", "/graphql", body, headers)
    check(status == 200, f"POST /graphql answered {status}: {raw[:500]!r}")
    answer = json.loads(raw)
    check(not answer.get("errors"), f"GraphQL errors: {answer.get('errors')}")
    return answer["data"], served_by(response_headers)


def register(name):
    data, by = graphql(
        "mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id username } } }",
        {
            "input": {
                "username": name,
                "email": f"{name}@example.com",
                "password": "correct horse battery",
                "fullName": name,
            }
        },
    )
    step(f"registered {name} (answered by {by})")
    return data["register"]["accessToken"], data["register"]["user"]["id"]


def multipart(field, filename, content, content_type="application/octet-stream"):
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


CHAT_EVENTS = """subscription($chatId: ID!) {
  chatEvents(chatId: $chatId) {
    __typename
    ... on MessageCreated { cursor message { id content sender { username } } }
  }
}"""


async def subscriber(token, chat_id, label):
    """A graphql-transport-ws socket with chatEvents started; (socket, instance)."""
    ws = await connect(WS, subprotocols=["graphql-transport-ws"], open_timeout=15)
    by = ws.response.headers.get("X-Served-By", "?")
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), LIVE_TIMEOUT))
    check(ack.get("type") == "connection_ack", f"{label}: expected connection_ack, got {ack}")
    await ws.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CHAT_EVENTS, "variables": {"chatId": chat_id}}})
    )
    step(f"{label}: chatEvents subscribed over the WebSocket (upgraded by {by})")
    return ws, by


async def next_message(ws, label):
    """The next MessageCreated on the socket (pings are answered by the library)."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), LIVE_TIMEOUT)
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        check(kind == "next", f"{label}: unexpected frame {frame}")
        check(not frame["payload"].get("errors"), f"{label}: subscription error {frame['payload']}")
        event = frame["payload"]["data"]["chatEvents"]
        if event["__typename"] == "MessageCreated":
            return event


def send(token, chat_id, content):
    data, by = graphql(
        "mutation($chatId: ID!, $content: String!) { sendMessage(input: {chatId: $chatId, content: $content}) { id } }",
        {"chatId": chat_id, "content": content},
        token,
    )
    return data["sendMessage"]["id"], by


async def live_round_trip(sender_token, reader_token, chat_id):
    sockets = [await subscriber(reader_token, chat_id, f"socket {i}") for i in (1, 2)]
    try:
        # A subscription has no acknowledgement, so a first send may overtake it: "hello"
        # messages are sent (each a new one) until both sockets have received one. From then on
        # every message must arrive on both.
        hello_ids, waiting = set(), {0, 1}
        for attempt in range(1, 11):
            msg_id, by = send(sender_token, chat_id, f"hello {attempt}")
            hello_ids.add(msg_id)
            step(f"sent 'hello {attempt}' (answered by {by})")
            for i in sorted(waiting):
                try:
                    event = await asyncio.wait_for(next_message(sockets[i][0], f"socket {i + 1}"), 1)
                except asyncio.TimeoutError:
                    continue
                check(event["message"]["id"] in hello_ids, f"socket {i + 1}: unexpected message {event}")
                check(event["cursor"], f"socket {i + 1}: MessageCreated without a cursor")
                waiting.discard(i)
            if not waiting:
                break
        check(not waiting, f"socket(s) {sorted(i + 1 for i in waiting)} received none of 10 messages live")
        step("both sockets receive messages live")

        sent, answered_by = [], set()
        for i in range(1, 5):
            msg_id, by = send(sender_token, chat_id, f"live {i}")
            sent.append(msg_id)
            answered_by.add(by)
        step(f"sent 4 more messages (answered by {sorted(answered_by)})")
        for ws, label in ((sockets[0][0], "socket 1"), (sockets[1][0], "socket 2")):
            got = []
            for _ in sent:
                try:
                    event = await next_message(ws, label)
                except asyncio.TimeoutError:
                    raise Failure(f"{label}: message {len(got) + 1} of {len(sent)} not received within {LIVE_TIMEOUT} s")
                while event["message"]["id"] in hello_ids:  # a late "hello"
                    event = await next_message(ws, label)
                check(event["cursor"], f"{label}: MessageCreated without a cursor")
                got.append(event["message"]["id"])
            check(got == sent, f"{label}: received {got}, sent {sent} (order or content differ)")
        step("both sockets received every message live, in order, each with its cursor")
        instances = {by for _, by in sockets} | answered_by
        return instances
    finally:
        for ws, _ in sockets:
            await ws.close()


def upload_and_download(token):
    content = b"".join(b"goftgu deploy smoke line %06d\n" % i for i in range(40000))  # ~1.2 MB text
    body, content_type = multipart("file", "smoke.txt", content, "text/plain")
    status, headers, raw = http(
        "POST", "/api/upload", body, {"authorization": f"Bearer {token}", "content-type": content_type}
    )
    check(status == 201, f"POST /api/upload answered {status}: {raw[:500]!r}")
    uploaded = json.loads(raw)
    check(uploaded.get("size") == len(content), f"upload size {uploaded.get('size')} != {len(content)}")
    step(f"uploaded {len(content)} bytes via POST /api/upload (answered by {served_by(headers)}): {uploaded['url'][:40]}…")

    served = set()
    # Links are absolute, on the public address (nginx's), so they work from any origin.
    check(uploaded["url"].startswith(BASE + "/files/"), f"unexpected url {uploaded['url']}")
    signed = uploaded["url"][len(BASE):]
    for i in range(4):
        # Alternately the signed link (no token) and the plain path with a token.
        if i % 2 == 0:
            status, headers, raw = http("GET", signed)
        else:
            status, headers, raw = http("GET", f"/files/{uploaded['id']}", headers={"authorization": f"Bearer {token}"})
        check(status == 200, f"download {i + 1} answered {status}: {raw[:300]!r}")
        check(raw == content, f"download {i + 1}: {len(raw)} bytes differ from the {len(content)} uploaded")
        served.add(served_by(headers))
    step(f"downloaded it 4 times, identical (served by {sorted(served)})")

    first, last = 100_000, 100_999
    status, headers, raw = http("GET", signed, headers={"range": f"bytes={first}-{last}"})
    check(status == 206, f"Range download answered {status}, expected 206")
    check(
        headers.get("content-range") == f"bytes {first}-{last}/{len(content)}",
        f"Content-Range {headers.get('content-range')!r}",
    )
    check(raw == content[first : last + 1], "Range download: wrong bytes")
    served.add(served_by(headers))
    status, headers, _ = http("GET", signed, headers={"range": f"bytes={len(content) + 10}-"})
    check(status == 416, f"Range past the end answered {status}, expected 416")
    served.add(served_by(headers))
    step(f"Range bytes={first}-{last} -> 206 with the right bytes; past the end -> 416")
    return served


def endpoints():
    for path in ("/healthz", "/readyz"):
        status, headers, raw = http("GET", path)
        check(status == 200, f"GET {path} answered {status}: {raw[:200]!r}")
    status, _, raw = http("GET", "/metrics")
    check(status == 200 and b"goftgu_" in raw, f"GET /metrics answered {status}")
    step("/healthz, /readyz and /metrics answer through nginx")


def main():
    suffix = uuid.uuid4().hex[:8]
    token_a, _ = register(f"ana_{suffix}")
    token_b, _ = register(f"bob_{suffix}")
    data, by = graphql(
        "mutation($input: CreateGroupInput!) { createGroup(input: $input) { id memberCount } }",
        {"input": {"name": "deploy smoke", "members": [f"bob_{suffix}"]}},
        token_a,
    )
    chat_id = data["createGroup"]["id"]
    check(data["createGroup"]["memberCount"] == 2, f"group has {data['createGroup']['memberCount']} members")
    step(f"created a group of 2 (answered by {by})")

    instances = asyncio.run(live_round_trip(token_a, token_b, chat_id))
    instances |= upload_and_download(token_a)
    endpoints()
    instances.discard("?")
    check(len(instances) >= 2, f"only one instance answered through nginx: {sorted(instances)}")
    step(f"passed: {len(instances)} instances served the round trip {sorted(instances)}")


if __name__ == "__main__":
    try:
        main()
    except Failure as failure:
        print(f"smoke FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # connection refused, timeouts, bad JSON: all failures
        print(f"smoke FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
