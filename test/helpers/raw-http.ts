import net from 'node:net';
import tls from 'node:tls';

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

export interface RawResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** True when the body arrived whole by its own framing (Content-Length, the last chunk, or none). */
  complete: boolean;
}

/**
 * One HTTP/1.1 request over a bare TCP (or TLS) socket, written byte for byte, so tests can send
 * request targets that fetch and http.request would normalise or refuse. The response is parsed
 * just enough to tell a complete body from a cut one; the socket is closed after one response.
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
  const head = `${method} ${request.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

  return new Promise((resolve, reject) => {
    const socket = url.protocol === 'https:'
      ? tls.connect({ host: url.hostname, port, ca: request.ca, servername: 'localhost' })
      : net.connect({ host: url.hostname, port });
    const parser = new ResponseParser(method === 'HEAD');
    let settled = false;
    const finish = (complete: boolean): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (!parser.head) {
        reject(new Error('connection closed before a response head arrived'));
        return;
      }
      resolve({ status: parser.head.status, headers: parser.head.headers, body: parser.body(), complete });
    };
    socket.on(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      socket.write(head);
      if (body) socket.write(body);
    });
    let headSeen = false;
    socket.on('data', (chunk: Buffer) => {
      const done = parser.push(chunk);
      if (parser.head && !headSeen) {
        headSeen = true;
        request.onHead?.(parser.head.status);
      }
      if (done) finish(true);
    });
    socket.on('end', () => finish(parser.closeDelimitedEnd()));
    socket.on('close', () => finish(false));
    socket.on('error', () => finish(false));
  });
}

interface Head {
  status: number;
  headers: Record<string, string>;
}

class ResponseParser {
  head: Head | undefined;
  private buffered = Buffer.alloc(0);
  private chunks: Buffer[] = [];
  private framing: 'none' | 'length' | 'chunked' | 'close' = 'none';
  private remaining = 0;

  constructor(private readonly isHead: boolean) {}

  body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** True once the response is complete by its framing. A close-delimited body is only done at end. */
  closeDelimitedEnd(): boolean {
    return this.head !== undefined && this.framing === 'close';
  }

  push(data: Buffer): boolean {
    this.buffered = Buffer.concat([this.buffered, data]);
    for (;;) {
      if (!this.head) {
        const end = this.buffered.indexOf('\r\n\r\n');
        if (end < 0) return false;
        const lines = this.buffered.subarray(0, end).toString('latin1').split('\r\n');
        this.buffered = this.buffered.subarray(end + 4);
        const status = Number(lines[0]!.split(' ')[1]);
        if (status >= 100 && status < 200) continue; // interim response (100 Continue)
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
        }
        this.head = { status, headers };
        if (this.isHead || status === 204 || status === 304) return true;
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
        return this.remaining === 0;
      }
      if (this.framing === 'close') {
        this.chunks.push(this.buffered);
        this.buffered = Buffer.alloc(0);
        return false;
      }
      // chunked: <hex size>\r\n<data>\r\n ... 0\r\n<trailers>\r\n
      for (;;) {
        const lineEnd = this.buffered.indexOf('\r\n');
        if (lineEnd < 0) return false;
        const size = parseInt(this.buffered.subarray(0, lineEnd).toString('latin1'), 16);
        if (size === 0) return this.buffered.indexOf('\r\n\r\n', lineEnd) >= 0; // last chunk, then trailers
        if (this.buffered.length < lineEnd + 2 + size + 2) return false;
        this.chunks.push(this.buffered.subarray(lineEnd + 2, lineEnd + 2 + size));
        this.buffered = this.buffered.subarray(lineEnd + 2 + size + 2);
      }
    }
  }
}
