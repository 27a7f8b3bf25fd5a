// Reads a request body with a hard cap, without express.json() (which costs about half the
// throughput in measurements) and without echoing body content in any error.

import type { IncomingMessage } from 'node:http';

export type BodyResult = { ok: true; text: string } | { ok: false; reason: string };

export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const type = header.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json';
}

export function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      req.resume(); // drain, so the socket can be answered and closed cleanly
      resolve({ ok: false, reason: `body of ${declared} bytes exceeds the limit of ${maxBytes} bytes` });
      return;
    }
    // A body that arrives in one chunk is decoded from it as is; with more chunks and a
    // Content-Length (what the API server sends), they are copied straight into one buffer
    // of that size, and otherwise (chunked encoding) gathered and joined once.
    const expected = Number.isFinite(declared) && declared >= 0 ? declared : -1;
    let first: Buffer | undefined;
    let sized: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    let done = false;
    const finish = (result: BodyResult): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      const total = size + chunk.length;
      if (total > maxBytes) {
        first = sized = chunks = undefined;
        req.resume();
        finish({ ok: false, reason: `body exceeds the limit of ${maxBytes} bytes` });
        return;
      }
      if (first === undefined && size === 0) first = chunk;
      else if (expected >= total) {
        if (sized === undefined) {
          sized = Buffer.allocUnsafe(expected);
          first!.copy(sized, 0);
        }
        chunk.copy(sized, size);
      } else if (sized !== undefined) {
        // Longer than its Content-Length (Node's parser does not let this through).
        first = sized = undefined;
        req.resume();
        finish({ ok: false, reason: 'body longer than its Content-Length' });
        return;
      } else {
        chunks ??= [first!];
        chunks.push(chunk);
      }
      size = total;
    };
    req.on('data', onData);
    req.on('end', () => {
      const text = sized !== undefined ? sized.toString('utf8', 0, size) : chunks !== undefined ? Buffer.concat(chunks).toString('utf8') : first !== undefined ? first.toString('utf8') : '';
      finish({ ok: true, text });
    });
    req.on('error', () => finish({ ok: false, reason: 'the request body could not be read' }));
    req.on('aborted', () => finish({ ok: false, reason: 'the request was aborted' }));
  });
}

/** JSON.parse without letting the parser's message (which quotes the input) escape. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, reason: 'body is not valid JSON' };
  }
}
