import net from 'node:net';
import tls from 'node:tls';

/**
 * HTTP/1.1 over bare sockets, for tests that need what fetch and http.request normalise or
 * refuse: request targets sent byte for byte (rawRequest: one request per socket, TCP or TLS),
 * and, on a kept-alive connection (openRawConnection), repeated header names, arbitrary bytes in
 * a header value, several requests on one connection, or bytes meant to smuggle a second request.
 * Responses go through one parser (ResponseStreamParser), just enough to split them by their
 * framing (Content-Length, chunked, or close-delimited) and to tell a complete body from a cut one.
 */

export interface RawResponse {
  status: number;
  /** Header lines in order, names as sent. */
  rawHeaders: [string, string][];
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The status line and header lines exactly as received (latin1), without the final CRLF CRLF. */
  head: string;
  body: Buffer;
  /** True when the body arrived whole by its own framing (Content-Length, the last chunk, or none). */
  complete: boolean;
}

/** Incremental parser for a stream of responses on one connection. */
export class ResponseStreamParser {
  private buffered = Buffer.alloc(0);
  private current:
    { status: number; rawHeaders: [string, string][]; headers: Record<string, string>; head: string } | undefined;
  private framing: 'length' | 'chunked' | 'close' = 'length';
  private remaining = 0;
  private chunks: Buffer[] = [];
  readonly responses: RawResponse[] = [];

  /**
   * `isHead`: true for a response to a HEAD request (no body whatever the headers say).
   * `onHead`: called with each final response's status and headers as soon as its head has arrived.
   */
  constructor(
    private readonly options: {
      isHead?: () => boolean;
      onHead?: (status: number, headers: Record<string, string>) => void;
    } = {},
  ) {}

  /** Feeds bytes; returns the responses completed by them. */
  push(data: Buffer): RawResponse[] {
    this.buffered = Buffer.concat([this.buffered, data]);
    const done: RawResponse[] = [];
    for (;;) {
      if (!this.current) {
        const end = this.buffered.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = this.buffered.subarray(0, end).toString('latin1');
        this.buffered = this.buffered.subarray(end + 4);
        const lines = head.split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        if (status >= 100 && status < 200) continue;
        const rawHeaders: [string, string][] = [];
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim();
          const value = line.slice(colon + 1).trim();
          rawHeaders.push([name, value]);
          const key = name.toLowerCase();
          headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
        }
        this.current = { status, rawHeaders, headers, head };
        this.chunks = [];
        this.options.onHead?.(status, headers);
        if (this.options.isHead?.() || status === 204 || status === 304) {
          done.push(this.finish(true));
          continue;
        }
        if (/chunked/i.test(headers['transfer-encoding'] ?? '')) this.framing = 'chunked';
        else if (headers['content-length'] !== undefined) {
          this.framing = 'length';
          this.remaining = Number(headers['content-length']);
        } else this.framing = 'close';
      }
      if (this.framing === 'length') {
        const take = this.buffered.subarray(0, this.remaining);
        this.chunks.push(take);
        this.remaining -= take.length;
        this.buffered = this.buffered.subarray(take.length);
        if (this.remaining > 0) break;
        done.push(this.finish(true));
        continue;
      }
      if (this.framing === 'close') {
        this.chunks.push(this.buffered);
        this.buffered = Buffer.alloc(0);
        break;
      }
      // chunked
      let finished = false;
      for (;;) {
        const lineEnd = this.buffered.indexOf('\r\n');
        if (lineEnd < 0) break;
        const size = parseInt(this.buffered.subarray(0, lineEnd).toString('latin1'), 16);
        if (size === 0) {
          const trailersEnd = this.buffered.indexOf('\r\n\r\n');
          if (trailersEnd < 0) break;
          this.buffered = this.buffered.subarray(trailersEnd + 4);
          finished = true;
          break;
        }
        if (this.buffered.length < lineEnd + 2 + size + 2) break;
        this.chunks.push(this.buffered.subarray(lineEnd + 2, lineEnd + 2 + size));
        this.buffered = this.buffered.subarray(lineEnd + 2 + size + 2);
      }
      if (!finished) break;
      done.push(this.finish(true));
    }
    this.responses.push(...done);
    return done;
  }

  /**
   * The connection ended: a response in progress is complete only if close-delimited and the
   * peer ended it cleanly (`cleanly` false for a reset or an error).
   */
  end(cleanly = true): RawResponse | undefined {
    if (!this.current) return undefined;
    const r = this.finish(cleanly && this.framing === 'close');
    this.responses.push(r);
    return r;
  }

  private finish(complete: boolean): RawResponse {
    const c = this.current!;
    this.current = undefined;
    return { ...c, body: Buffer.concat(this.chunks), complete };
  }
}

export interface RawRequest {
  method?: string;
  /** The request target exactly as it goes on the wire: nothing is encoded, decoded or normalised. */
  path: string;
  /** Header lines in order; a Host header is added unless one is given. */
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** For an https:// base URL: the CA to trust. */
  ca?: string | Buffer;
  /** Called once the response head has arrived (before the body is complete). */
  onHead?: (status: number) => void;
}

/**
 * One HTTP/1.1 request over a bare TCP (or TLS) socket, written byte for byte; the socket is
 * closed after one response.
 */
export function rawRequest(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const port = Number(url.port);
  const method = request.method ?? 'GET';
  const headers = { ...request.headers };
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'host')) headers.Host = url.host;
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['Content-Length'] = String(body.length);
  }
  const head = `${method} ${request.path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

  return new Promise((resolve, reject) => {
    const socket =
      url.protocol === 'https:'
        ? tls.connect({ host: url.hostname, port, ca: request.ca, servername: 'localhost' })
        : net.connect({ host: url.hostname, port });
    const parser = new ResponseStreamParser({ isHead: () => method === 'HEAD', onHead: request.onHead });
    let settled = false;
    const settle = (response: RawResponse | undefined): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (response) resolve(response);
      else reject(new Error('connection closed before a response head arrived'));
    };
    socket.on(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      socket.write(head);
      if (body) socket.write(body);
    });
    socket.on('data', (chunk: Buffer) => {
      const [response] = parser.push(chunk);
      if (response) settle(response);
    });
    socket.on('end', () => settle(parser.end(true)));
    socket.on('close', () => settle(parser.end(false)));
    socket.on('error', () => settle(parser.end(false)));
  });
}

/** One kept-alive connection: send requests one after another and read their responses. */
export interface RawConnection {
  /** Writes bytes as they are (a string is written as latin1 unless it is already a Buffer). */
  write(bytes: string | Buffer): void;
  /** Writes one request and resolves with its response; rejects if the connection closes first. */
  request(bytes: string | Buffer, timeoutMs?: number): Promise<RawResponse>;
  /** The next response not yet handed out; rejects if the connection closes first or after timeoutMs. */
  next(timeoutMs?: number): Promise<RawResponse>;
  /** Resolves with every response received until the server closes the connection (or timeoutMs passes). */
  drain(timeoutMs: number): Promise<{ responses: RawResponse[]; closedByServer: boolean }>;
  /** True once the server closed or reset the connection. */
  readonly closed: boolean;
  /** Resolves when the socket has closed, whoever closed it. */
  whenClosed: Promise<void>;
  socket: net.Socket;
  destroy(): void;
}

export function openRawConnection(baseUrl: string): Promise<RawConnection> {
  const url = new URL(baseUrl);
  const socket = net.connect({ host: url.hostname, port: Number(url.port) });
  const parser = new ResponseStreamParser();
  let closed = false;
  const waiters: { resolve: (r: RawResponse) => void; reject: (e: Error) => void }[] = [];
  const backlog: RawResponse[] = [];
  let onClose: () => void = () => {};
  const whenClosed = new Promise<void>((resolve) => {
    onClose = resolve;
  });

  socket.on('data', (chunk: Buffer) => {
    for (const r of parser.push(chunk)) {
      const w = waiters.shift();
      if (w) w.resolve(r);
      else backlog.push(r);
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
    const last = parser.end();
    if (last) {
      const w = waiters.shift();
      if (w) w.resolve(last);
      else backlog.push(last);
    }
    for (const w of waiters.splice(0)) w.reject(new Error('connection closed before a response arrived'));
    onClose();
  });

  const next = (timeoutMs = 10_000): Promise<RawResponse> => {
    const ready = backlog.shift();
    if (ready) return Promise.resolve(ready);
    if (closed) return Promise.reject(new Error('connection closed before a response arrived'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        resolve: (r: RawResponse) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      waiters.push(w);
    });
  };

  const connection: RawConnection = {
    socket,
    whenClosed,
    get closed() {
      return closed;
    },
    write(bytes) {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    },
    request(bytes, timeoutMs = 10_000) {
      connection.write(bytes);
      return next(timeoutMs);
    },
    next,
    async drain(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        whenClosed.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      return { responses: [...parser.responses], closedByServer: !timedOut };
    },
    destroy() {
      socket.destroy();
    },
  };

  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(connection));
    socket.once('error', reject);
  });
}

/** A request head as bytes: header values may hold any bytes (a string value is written as UTF-8). */
export function requestBytes(
  method: string,
  target: string,
  headers: [string, string | Buffer][],
  body?: string | Buffer,
): Buffer {
  const parts: Buffer[] = [Buffer.from(`${method} ${target} HTTP/1.1\r\n`, 'latin1')];
  for (const [name, value] of headers) {
    parts.push(
      Buffer.from(`${name}: `, 'latin1'),
      typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from('\r\n'));
  if (body !== undefined) parts.push(Buffer.from(body));
  return Buffer.concat(parts);
}
