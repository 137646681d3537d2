import type { Ecosystem } from '../config/schema.js';
import type { Principal } from '../auth/principal.js';
import type { Metrics } from '../metrics/registry.js';
import { newEventId, type ActivityEvent } from './event.js';
import { parseArtifactPath } from './parse-path.js';
import type { SinkRunner } from './queue.js';

/** What the proxy knows about one finished, authenticated request. */
export interface RequestActivity {
  requestId: string;
  principal: Principal;
  /** The route's ecosystem. */
  ecosystem: Ecosystem;
  /** The path below the route prefix, raw, query included. */
  path: string;
  method: string;
  status: number;
  bytes: number;
  durationMs: number;
  clientIp: string;
  userAgent: string | undefined;
  endedAt: number;
}

export interface ActivityRecorderOptions {
  /** Sinks of the Production stream: the security team's alerting pipeline. */
  production: readonly SinkRunner[];
  /** Sinks of the separate Development stream; empty (the default) means no Development event at all. */
  development: readonly SinkRunner[];
  metrics: Metrics;
  /** Bounds the client-chosen project label. */
  projectLabel: (project: string) => string;
}

export interface ActivityRecorder {
  /** Synchronous: builds the event and enqueues it. Never awaits a sink. */
  record(activity: RequestActivity): void;
}

/**
 * The Production filter. A Production request becomes one event in every Production sink and
 * moves the security metrics; a Development request stops here (or, when a Development stream
 * is configured, goes to its own sinks only, never into Production's sinks or metrics).
 */
export function createActivityRecorder(options: ActivityRecorderOptions): ActivityRecorder {
  const { production, development, metrics, projectLabel } = options;
  const recordDevelopment = development.length > 0;

  function toEvent(a: RequestActivity): ActivityEvent {
    const ref = parseArtifactPath(a.ecosystem, a.path);
    return {
      id: newEventId(a.endedAt),
      time: new Date(a.endedAt).toISOString(),
      requestId: a.requestId,
      tokenId: a.principal.tokenId,
      tokenName: a.principal.tokenName,
      tokenType: a.principal.tokenType,
      project: a.principal.project,
      ecosystem: ref.ecosystem,
      kind: ref.kind,
      package: ref.package,
      version: ref.version,
      file: ref.file,
      method: a.method,
      status: a.status,
      bytes: a.bytes,
      durationMs: Math.round(a.durationMs * 1000) / 1000,
      clientIp: a.clientIp,
      userAgent: a.userAgent ?? null,
      sealed: ref.sealed,
    };
  }

  // prom-client hashes label values on every labels() call: keep the children. The label sets
  // are bounded (ecosystems, limited projects, token names), so is this map.
  type Children = { downloads: { inc(): void }; bytes: { inc(v: number): void }; metadata: { inc(): void } };
  const children = new Map<string, Children>();
  function childrenFor(ecosystem: string, project: string, tokenName: string, sealed: boolean): Children {
    const key = `${ecosystem}\u0000${project}\u0000${tokenName}\u0000${sealed}`;
    let c = children.get(key);
    if (!c) {
      c = {
        downloads: metrics.productionDownloads.labels(ecosystem, project, tokenName, String(sealed)),
        bytes: metrics.productionDownloadBytes.labels(ecosystem, project, tokenName),
        metadata: metrics.productionMetadataRequests.labels(ecosystem, project, tokenName),
      };
      children.set(key, c);
    }
    return c;
  }

  return {
    record(a) {
      if (a.principal.tokenType !== 'production') {
        if (recordDevelopment) {
          const event = toEvent(a);
          for (const runner of development) runner.enqueue(event);
        }
        return;
      }
      const event = toEvent(a);
      for (const runner of production) runner.enqueue(event);

      if (a.status < 200 || a.status >= 300) return;
      const project = projectLabel(event.project);
      const c = childrenFor(event.ecosystem, project, event.tokenName, event.sealed);
      if (event.kind === 'download') {
        c.downloads.inc();
        c.bytes.inc(event.bytes);
      } else {
        c.metadata.inc();
      }
    },
  };
}
