// Uploads that the server refuses before reading their body, sent the way Node's fetch (undici)
// sends them: POST <base>/api/upload, multipart with a `file` part, the body either a
// ReadableStream (chunked, duplex: 'half') or a Buffer (Content-Length). Cases: no token (a
// 10-byte file and a big one), a token and a file over the server's limit. Prints for each case
// the status and the JSON body the client saw, or the error it got instead (EPIPE, reset...).
// Exit 0 whenever the requests were made.
// Usage: node upload.mjs http://127.0.0.1:<port> <token> <big file bytes>
import { args, describeError, report, within } from './tools.mjs';

const [base, token, bigBytes] = args('node upload.mjs <base url> <token> <big file bytes>');
const big = Number(bigBytes);

const boundary = 'goftgu-test-boundary-7MA4YWxkTrZu0gW';
function multipart(size) {
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload.bin"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return Buffer.concat([head, Buffer.alloc(size, 0x61), tail]);
}

/** The bytes as a stream of 64 KiB chunks, each after a turn of the event loop. */
function stream(bytes) {
  let offset = 0;
  return new ReadableStream({
    async pull(controller) {
      await new Promise((resolve) => setImmediate(resolve));
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(new Uint8Array(bytes.subarray(offset, offset + 65536)));
      offset += 65536;
    },
  });
}

async function attempt(name, { auth, size, body }) {
  const bytes = multipart(size);
  const headers = { 'content-type': `multipart/form-data; boundary=${boundary}` };
  if (auth) headers.authorization = `Bearer ${token}`;
  const init = { method: 'POST', headers };
  if (body === 'stream') {
    init.body = stream(bytes);
    init.duplex = 'half';
  } else {
    init.body = bytes;
  }
  const seen = { case: name, body, bytes: bytes.length };
  try {
    const response = await within(20000, name, fetch(`${base}/api/upload`, init));
    seen.status = response.status;
    const text = await within(20000, `${name} body`, response.text());
    try {
      seen.json = JSON.parse(text);
    } catch {
      seen.text = text.slice(0, 300);
    }
  } catch (error) {
    seen.error = describeError(error);
  }
  return seen;
}

const results = [];
for (const body of ['stream', 'buffer']) {
  results.push(await attempt('no token, 10 bytes', { auth: false, size: 10, body }));
  results.push(await attempt('no token, big', { auth: false, size: big, body }));
  results.push(await attempt('too big', { auth: true, size: big, body }));
}
report({ results });
