import type { Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';

/**
 * The proxy port's listener, which parks idle kept-alive connections off node:http.
 *
 * node:http holds about 4 KiB per open connection beside the socket itself (its parser, a dozen
 * bound listeners, per-connection state; `node bench/conn-floor.mjs`) for as long as the
 * connection is open, idle or not, and package managers and CI fleets keep thousands open. Here
 * the listening socket is ours: a connection is handed to node:http (its documented `'connection'`
 * injection, with a Duplex standing in for the socket) when it opens, taken back when it falls
 * idle after a response (the stand-in is destroyed, which frees node:http's state; the socket
 * stays open with a few shared listeners on it) and handed over again when its next bytes arrive.
 * A parked connection costs what a bare TCP socket costs. A connection's first answer parks it at
 * once (its stand-in dies young, taken by a young-generation GC); one that came back for more is
 * parked after parkAfterMs at rest, so a connection in use keeps its stand-in (and credential
 * memo) instead of setting node:http's state up again for every request.
 *
 * A connection is parked only between messages, so no request byte is dropped or parsed twice:
 * every request node:http read on it has been read to its end and answered, nothing is buffered
 * either way, and the bytes received last end with an empty line (CRLF CRLF). An empty line ends
 * a header block, so no message can be half-read after it: a request whose headers arrived whole
 * was parsed (and is one of those answered), and a body still arriving belongs to a request not
 * yet read to its end. A connection whose last request carried a body that ends otherwise stays
 * with node:http until its next request or its close. Timeouts are node:http's, on the socket
 * (the stand-in's setTimeout is the socket's): a parked connection is closed when the keep-alive
 * timeout node:http set after the response runs out.
 *
 * Parking pays off only where connections are many: a stand-in is a stream layer between the
 * socket and node:http, which otherwise parses straight from the socket's handle in C++ (no
 * JavaScript per read). So up to nativeConnections connections at a time are given to node:http
 * as they are and never parked (a new connection takes a place when one is free); the others are
 * parkable. Those given as they are cost node:http's ~4 KiB more each (1 MiB at the default).
 */
export type ParkingServer = NetServer & {
  /** Closes connections not in a request: the parked ones, and node:http's idle ones. */
  closeIdleConnections(): void;
  /** Closes every connection. */
  closeAllConnections(): void;
};

/** Counts (for tests): connections open, of those given to node:http as they are, and parked. */
export interface ParkingStats {
  open: number;
  native: number;
  parked: number;
}

const STAND_IN = Symbol('tollgate.standIn');
/** Requests read on the connection, counted up to 2. */
const SERVED = Symbol('tollgate.served');
/** Given to node:http as it is (never parked). */
const NATIVE = Symbol('tollgate.native');
type ProxySocket = Socket & { [STAND_IN]?: StandIn; [SERVED]?: number; [NATIVE]?: true };
/** A connection that has made more than one request is parked after this long at rest. */
export const DEFAULT_PARK_AFTER_MS = 1000;
/** At most this many connections at a time are given to node:http as they are (never parked). */
export const DEFAULT_NATIVE_CONNECTIONS = 256;

/** CR LF CR LF as the last four bytes received, big-endian. */
const EMPTY_LINE_END = 0x0d0a0d0a;

/** The Duplex node:http serves a connection through while it is not parked. */
class StandIn extends Duplex {
  /** The last four bytes received on this stand-in, big-endian. */
  tail = 0;
  /** The response to the last request node:http read here (they are answered in order). */
  lastResponse: ServerResponse | undefined = undefined;
  /** When it last received bytes or finished a response (performance.now()). */
  lastActive = 0;
  /** Waiting in one of the parking queues. */
  queued = false;
  /** Destroyed to park its socket (the socket lives on). */
  parked = false;
  /** The write callback held until the socket drains (backpressure to node:http). */
  drainCallback: ((error?: Error | null) => void) | undefined = undefined;

  constructor(readonly socket: ProxySocket) {
    super({ allowHalfOpen: true, decodeStrings: false });
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
  /** True on a TLS connection, as on a TLSSocket. */
  get encrypted(): boolean {
    return (this.socket as { encrypted?: boolean }).encrypted === true;
  }
  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms);
    if (callback) this.once('timeout', callback);
    return this;
  }
  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, initialDelayMs?: number): this {
    this.socket.setKeepAlive(enable, initialDelayMs);
    return this;
  }

  // node:http's writes, corks and questions about the write side go straight to the socket: a
  // response is written as if node:http held the socket itself (one stream layer, not two). The
  // stand-in's own write side (_write, _writev, _final) serves end(data) and end().
  override write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    return this.socket.write(chunk as Buffer, encoding as BufferEncoding, callback as () => void);
  }
  override cork(): void {
    this.socket.cork();
  }
  override uncork(): void {
    this.socket.uncork();
  }

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }
  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.write(chunk, encoding)) callback();
    else this.drainCallback = callback;
  }
  override _writev(
    chunks: { chunk: Buffer | string; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    const socket = this.socket;
    let flowing = true;
    socket.cork();
    for (const { chunk, encoding } of chunks) flowing = socket.write(chunk, encoding);
    socket.uncork();
    if (flowing) callback();
    else this.drainCallback = callback;
  }
  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.parked) this.socket.destroy();
    callback(error);
  }
}

for (const name of ['writableLength', 'writableCorked', 'writableHighWaterMark', 'writableNeedDrain'] as const) {
  Object.defineProperty(StandIn.prototype, name, {
    get(this: StandIn) {
      return this.socket[name];
    },
  });
}

/** Parked: parkable, and without a stand-in at the moment. */
function isParked(socket: ProxySocket): boolean {
  return socket[STAND_IN] === undefined && socket[NATIVE] === undefined;
}

/** The last four bytes of the stream after chunk, given those before it. */
function tailAfter(tail: number, chunk: Buffer): number {
  const n = chunk.length;
  if (n >= 4) return chunk.readUInt32BE(n - 4);
  for (let i = 0; i < n; i++) tail = ((tail << 8) | chunk[i]!) >>> 0;
  return tail;
}

/** Between messages, with nothing pending either way (see the module comment). */
function atRest(standIn: StandIn): boolean {
  if (standIn.tail !== EMPTY_LINE_END || standIn.destroyed || standIn.writableEnded || standIn.readableEnded)
    return false;
  if (standIn.readableLength > 0 || standIn.writableLength > 0 || standIn.drainCallback !== undefined) return false;
  const res = standIn.lastResponse;
  return res === undefined || (res.writableFinished && res.req.complete);
}

export interface ParkingOptions {
  /** Terminate TLS here (certificate and key). */
  tls?: TlsOptions;
  /** How long a connection that has made more than one request stays at rest before it is parked. */
  parkAfterMs?: number;
  /** At most this many connections at a time are given to node:http as they are (never parked). */
  nativeConnections?: number;
}

/**
 * Listens for the proxy port and serves each connection through http (which must not listen
 * itself), parking it while idle. Emits 'parked' (socket) each time a connection is parked.
 */
export function createParkingServer(
  http: HttpServer,
  { tls, parkAfterMs = DEFAULT_PARK_AFTER_MS, nativeConnections = DEFAULT_NATIVE_CONNECTIONS }: ParkingOptions = {},
): ParkingServer & { stats(): ParkingStats } {
  const sockets = new Set<ProxySocket>();
  let native = 0;
  const server = tls
    ? createTlsServer({ ...tls, allowHalfOpen: true, noDelay: true })
    : createNetServer({ allowHalfOpen: true, noDelay: true });

  function serve(socket: ProxySocket): StandIn {
    const standIn = new StandIn(socket);
    socket[STAND_IN] = standIn;
    http.emit('connection', standIn);
    return standIn;
  }

  function park(standIn: StandIn): void {
    const socket = standIn.socket;
    if (socket[STAND_IN] !== standIn || !atRest(standIn)) return;
    if (!server.listening) {
      socket.destroy(); // closing: an idle connection is closed, not parked
      return;
    }
    standIn.parked = true;
    standIn.lastResponse = undefined;
    socket[STAND_IN] = undefined;
    if (socket.isPaused()) socket.resume();
    standIn.destroy(); // node:http frees its parser and state; the socket stays open
    server.emit('parked', socket);
  }

  // A connection's first answer: parked once this turn of the event loop is over, unless a
  // pipelined request arrived with it. Its stand-in then dies young (a young-generation GC takes it).
  let soon: StandIn[] = [];
  function parkSoonQueued(): void {
    const queued = soon;
    soon = [];
    for (const standIn of queued) {
      standIn.queued = false;
      park(standIn);
    }
  }
  function parkSoon(standIn: StandIn): void {
    if (standIn.queued) return;
    standIn.queued = true;
    if (soon.push(standIn) === 1) setImmediate(parkSoonQueued);
  }

  // A connection that came back for more: parked after parkAfterMs at rest, so one in use
  // keeps its stand-in (and its credential memo) between requests.
  let idle: StandIn[] = [];
  let idleTimer: NodeJS.Timeout | undefined;
  function parkIdleQueued(): void {
    const now = performance.now();
    const queued = idle;
    idle = [];
    for (const standIn of queued) {
      if (standIn.socket[STAND_IN] === standIn && now - standIn.lastActive < parkAfterMs) {
        idle.push(standIn); // busy again since, or not yet at rest long enough
        continue;
      }
      standIn.queued = false;
      park(standIn);
    }
    idleTimer = idle.length > 0 ? setTimeout(parkIdleQueued, parkAfterMs).unref() : undefined;
  }
  function parkWhenIdle(standIn: StandIn): void {
    standIn.lastActive = performance.now();
    if (standIn.queued) return;
    standIn.queued = true;
    idle.push(standIn);
    idleTimer ??= setTimeout(parkIdleQueued, parkAfterMs).unref();
  }

  function onData(this: ProxySocket, chunk: Buffer): void {
    const standIn = this[STAND_IN] ?? serve(this);
    standIn.lastActive = performance.now();
    standIn.tail = tailAfter(standIn.tail, chunk);
    // The rest of a body answered before it was read (node:http reads it to its end).
    const answered = standIn.lastResponse;
    const bodyAfterAnswer = answered !== undefined && answered.writableFinished && !answered.req.complete;
    if (!standIn.push(chunk)) this.pause();
    if (bodyAfterAnswer && standIn.lastResponse === answered && answered.req.complete) parkWhenIdle(standIn);
  }
  function onDrain(this: ProxySocket): void {
    const standIn = this[STAND_IN];
    if (standIn === undefined) return;
    const callback = standIn.drainCallback;
    if (callback !== undefined) {
      standIn.drainCallback = undefined;
      callback();
    }
    standIn.emit('drain'); // node:http's writes went to the socket: its drain is theirs
  }
  function onEnd(this: ProxySocket): void {
    const standIn = this[STAND_IN];
    if (standIn) standIn.push(null);
    else this.end();
  }
  function onError(this: ProxySocket, error: Error): void {
    const standIn = this[STAND_IN];
    if (standIn) standIn.destroy(error);
    else this.destroy();
  }
  function onClose(this: ProxySocket): void {
    sockets.delete(this);
    this[STAND_IN]?.destroy();
  }
  function onTimeout(this: ProxySocket): void {
    const standIn = this[STAND_IN];
    if (standIn) standIn.emit('timeout');
    else this.destroy();
  }
  function onNativeClose(this: ProxySocket): void {
    sockets.delete(this);
    native--;
  }
  function accept(socket: ProxySocket): void {
    sockets.add(socket);
    if (native < nativeConnections) {
      native++;
      socket[NATIVE] = true;
      socket.on('close', onNativeClose);
      http.emit('connection', socket);
      return;
    }
    socket[SERVED] = 0;
    socket.on('data', onData);
    socket.on('drain', onDrain);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('timeout', onTimeout);
    serve(socket);
  }
  server.on(tls ? 'secureConnection' : 'connection', accept);

  function onResponseFinish(this: ServerResponse): void {
    const standIn = this.req.socket;
    if (!(standIn instanceof StandIn) || standIn.lastResponse !== this) return;
    if (standIn.socket[SERVED] === 1) parkSoon(standIn);
    else parkWhenIdle(standIn);
  }
  http.prependListener('request', function parkingOnRequest(req, res) {
    const standIn = req.socket;
    if (!(standIn instanceof StandIn)) return;
    standIn.lastResponse = res;
    const socket = standIn.socket;
    if (socket[SERVED]! < 2) socket[SERVED]!++;
    res.on('finish', onResponseFinish);
  });
  // node:http starts tracking connections (headers and request timeouts) when it listens.
  http.emit('listening');
  server.on('close', () => http.close());

  return Object.assign(server, {
    closeIdleConnections(): void {
      for (const socket of sockets) if (isParked(socket)) socket.destroy();
      http.closeIdleConnections();
    },
    closeAllConnections(): void {
      for (const socket of sockets) socket.destroy();
    },
    stats(): ParkingStats {
      let parked = 0;
      for (const socket of sockets) if (isParked(socket)) parked++;
      return { open: sockets.size, native, parked };
    },
  });
}
