import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';

type Fetch = (request: Request, env: HttpBindings) => Response | Promise<Response>;

/**
 * The proxy port's Node request listener: Hono routes every request (`app.fetch`), and the
 * handler writes its response straight to `c.env.outgoing`, returning RESPONSE_ALREADY_SENT.
 *
 * @hono/node-server's listener is built for handlers that return a Response: per request it
 * makes an async frame, a 'close' listener that aborts the Request's signal, and reads the
 * returned Response's headers into a record before it sees the "already sent" marker. On the
 * proxy port none of that is ever used (bodies stream from c.env.incoming, never through the
 * Request), and it cost ~5 µs of the ~150 µs a proxied request costs (bench: 1 KiB, CPU per
 * request). This listener hands Hono a Request whose method and URL are plain fields (all
 * routing reads) and whose headers are built only if a handler asks for them; a handler that
 * does return a Response of its own still gets it written.
 */
export function createProxyListener(fetch: Fetch, onError: (err: unknown, outgoing: ServerResponse) => void) {
  return function proxyListener(incoming: IncomingMessage, outgoing: ServerResponse): void {
    let result: Response | Promise<Response>;
    try {
      result = fetch(new NodeRequest(incoming) as unknown as Request, { incoming, outgoing });
    } catch (err) {
      onError(err, outgoing);
      return;
    }
    if (result === RESPONSE_ALREADY_SENT) return;
    if (result instanceof Promise) {
      result.then((response) => writeResponse(response, outgoing), (err: unknown) => onError(err, outgoing))
        .catch((err: unknown) => onError(err, outgoing));
    } else {
      writeResponse(result, outgoing).catch((err: unknown) => onError(err, outgoing));
    }
  };
}

/** A Response a handler returned (anything but the "already sent" marker). */
async function writeResponse(response: Response, outgoing: ServerResponse): Promise<void> {
  if (response === RESPONSE_ALREADY_SENT || response.headers.has('x-hono-already-sent') || outgoing.headersSent) return;
  const body = response.body === null ? undefined : Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) {
    if (name === 'set-cookie') headers[name] = response.headers.getSetCookie();
    else headers[name] = value;
  }
  if (body !== undefined) headers['content-length'] = String(body.length);
  outgoing.writeHead(response.status, headers);
  outgoing.end(body);
}

/**
 * What Hono reads of a request to route it. `url` is absolute, as the Fetch API has it (the host
 * part comes from the Host header and is used for nothing else). It has no body readers: on
 * this port bodies stream from c.env.incoming, never through the Request.
 */
class NodeRequest {
  readonly method: string;
  readonly url: string;
  readonly #incoming: IncomingMessage;
  #headers: Headers | undefined;

  constructor(incoming: IncomingMessage) {
    this.#incoming = incoming;
    this.method = incoming.method ?? 'GET';
    this.url = `http://${hostOf(incoming)}${incoming.url ?? '/'}`;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      const headers = new Headers();
      const raw = this.#incoming.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        try {
          headers.append(raw[i]!, raw[i + 1]!);
        } catch {
          // a header the Fetch API refuses (never one Node's parser accepted as valid HTTP)
        }
      }
      this.#headers = headers;
    }
    return this.#headers;
  }
}

function hostOf(incoming: IncomingMessage): string {
  const host = incoming.headers.host;
  // Only what a host can be: anything else would make the URL unparsable for a handler.
  return host && /^[\w.:[\]-]+$/.test(host) ? host : 'localhost';
}
