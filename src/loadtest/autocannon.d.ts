/**
 * The part of autocannon 8 the load test uses (the package ships no types, and @types/autocannon
 * is not a dependency). Clients are autocannon's own connections: one request in flight each
 * (pipelining 1), reconnecting by themselves after an error.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  interface RequestData {
    method: string;
    path: string;
    headers: Record<string, string>;
  }

  interface AutocannonClient extends EventEmitter {
    /** A complete response: status, bytes on the wire (head and body), ms since the request was written. */
    on(event: 'response', listener: (statusCode: number, resBytes: number, responseTime: number) => void): this;
    /** No response within `timeout` seconds: the connection is dropped and opened again. */
    on(event: 'timeout', listener: () => void): this;
    /** A socket error (refused, reset): the client connects again. */
    on(event: 'connError', listener: (error: Error) => void): this;
  }

  interface Options {
    url: string;
    connections: number;
    /** Seconds; checked at each one-second sample, so a run lasts whole seconds. */
    duration: number;
    /** Requests per second over all connections (0: as fast as it goes). */
    overallRate?: number;
    /** Seconds without a response before a request counts as a timeout. */
    timeout?: number;
    pipelining?: number;
    headers?: Record<string, string>;
    /** Called once per request, just before it is written; its return value is what is sent. */
    requests?: { method?: string; setupRequest: (req: RequestData) => RequestData }[];
    /** Called with each client as it is created, before its first connection. */
    setupClient?: (client: AutocannonClient) => void;
  }

  interface Result {
    errors: number;
    timeouts: number;
  }

  interface Instance extends EventEmitter {
    stop(): void;
  }

  function autocannon(options: Options, callback: (err: Error | null, result: Result) => void): Instance;
  export default autocannon;
  export type { AutocannonClient, Instance, Options, RequestData, Result };
}
