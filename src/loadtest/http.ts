import http from 'node:http';
import https from 'node:https';

/** Preflight and admin calls give up after this long. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Longest answer read (an admin API JSON answer; artifact bodies are drained, not kept). */
const MAX_BODY_BYTES = 1 << 20;

export interface Answer {
  status: number;
  /** Retry-After, as sent (429, 503). */
  retryAfter: string | undefined;
  /** The body as text, up to 1 MiB. */
  text: string;
}

/**
 * One request with node:http(s), certificates verified (Node's CA store and NODE_EXTRA_CA_CERTS),
 * no keep-alive. Rejects with a message naming the URL and the socket error's code: never a header.
 */
export function request(
  url: URL,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<Answer>((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: {
          ...options.headers,
          ...(options.body === undefined ? {} : { 'content-length': Buffer.byteLength(options.body) }),
        },
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_BODY_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        res.once('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.once('error', (err) => reject(unreachable(url, err)));
      },
    );
    req.once('timeout', () =>
      req.destroy(Object.assign(new Error('no answer'), { code: `timed out after ${REQUEST_TIMEOUT_MS / 1000} s` })),
    );
    req.once('error', (err) => reject(unreachable(url, err)));
    req.end(options.body);
  });
}

/** `cannot reach http://host:port/path: ECONNREFUSED`; the URL carries no credentials (refused at parse). */
function unreachable(url: URL, err: NodeJS.ErrnoException): Error {
  const reason = err.code ?? err.message;
  const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(reason)
    ? ' (a certificate Node does not trust: set NODE_EXTRA_CA_CERTS to its CA)'
    : '';
  return Object.assign(new Error(`cannot reach ${url.origin}${url.pathname}: ${reason}${hint}`), {
    code: 'TOLLGATE_LOADTEST_UNREACHABLE',
  });
}
