import type { Ecosystem } from '../config/schema.js';
import type { Principal } from '../auth/principal.js';
import type { Metrics } from '../metrics/registry.js';
import { newEventId, type ActivityCi, type ActivityEvent, type ActivityLeak } from './event.js';
import { isoTime } from '../iso-time.js';
import { createArtifactPathParser } from '../artifacts/parse-path/index.js';
import type { SinkRunner } from './queue.js';
import { NOTHING_TRUNCATED, RecordedActivityEvent } from './event-codec.js';
import { capEventFields, capIdentity, capLeak } from './event-caps.js';
import { tallyFor, type Tally } from '../metrics/tally.js';

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
  /** The response was not sent in full (the client went away mid-body): `bytes` is what was sent. */
  aborted: boolean;
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

/** A token reported leaked and revoked: an alert for the security team, whatever the token's type. */
export interface LeakActivity {
  tokenId: string;
  tokenName: string;
  tokenType: 'production' | 'development';
  leak: ActivityLeak;
  /** The reporter's address, as the gateway believes it. */
  clientIp: string;
  at: number;
}

export interface ActivityRecorder {
  /** Synchronous: builds the event and enqueues it. Never awaits a sink. */
  record(activity: RequestActivity): void;
  /**
   * A `leaked` alert in every Production sink, for Development tokens too: a leaked token of
   * either type downloads until it is revoked, so its report is the security team's business.
   */
  recordLeak(leak: LeakActivity): void;
}

/**
 * The Production filter. A Production request becomes one event in every Production sink and
 * moves the security metrics; a Development request stops here (or, when a Development stream
 * is configured, goes to its own sinks only, never into Production's sinks or metrics).
 */
export function createActivityRecorder(options: ActivityRecorderOptions): ActivityRecorder {
  const { production, development, metrics, projectLabel } = options;
  const recordDevelopment = development.length > 0;
  // Remembers recent paths: CI jobs fetch the same artifacts again and again.
  const parsePath = createArtifactPathParser();
  // A CI token's identity as events carry it, made once per cached token (the principal's `ci` is
  // the cached token's object, the same for every request of that token).
  const identities = new WeakMap<object, ActivityCi>();
  const identityOf = (ci: NonNullable<Principal['ci']>): ActivityCi => {
    let identity = identities.get(ci);
    if (identity === undefined) identities.set(ci, (identity = capIdentity(ci as unknown as Record<string, unknown>)));
    return identity;
  };

  function toEvent(a: RequestActivity): ActivityEvent {
    const ref = parsePath(a.ecosystem, a.path);
    const event = new RecordedActivityEvent({
      id: newEventId(a.endedAt),
      time: isoTime(a.endedAt),
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
      aborted: a.aborted,
      truncated: NOTHING_TRUNCATED,
      ci: a.principal.ci === undefined ? null : identityOf(a.principal.ci),
      leak: null,
    });
    // Before anything serialises it: every sink writes the same bounded line.
    capEventFields(event);
    return event;
  }

  // The label sets are bounded (ecosystems, limited projects, token names), so are these maps.
  // Nested by token name, project, ecosystem and sealed: cheaper than building and hashing one
  // joined string key per event. The counters themselves are tallied in plain numbers until a
  // scrape reads them (see tallyFor).
  type Tallies = { downloads: Tally; aborted: Tally; bytes: Tally; metadata: Tally };
  const tallies = new Map<string, Map<string, Map<string, [unsealed?: Tallies, sealed?: Tallies]>>>();
  function talliesFor(ecosystem: string, project: string, tokenName: string, sealed: boolean): Tallies {
    let byProject = tallies.get(tokenName);
    if (!byProject) {
      byProject = new Map();
      tallies.set(tokenName, byProject);
    }
    let byEcosystem = byProject.get(project);
    if (!byEcosystem) {
      byEcosystem = new Map();
      byProject.set(project, byEcosystem);
    }
    let pair = byEcosystem.get(ecosystem);
    if (!pair) {
      pair = [];
      byEcosystem.set(ecosystem, pair);
    }
    return (pair[sealed ? 1 : 0] ??= {
      downloads: tallyFor(metrics.productionDownloads, ecosystem, project, tokenName, String(sealed)),
      aborted: tallyFor(metrics.productionDownloadsAborted, ecosystem, project, tokenName, String(sealed)),
      bytes: tallyFor(metrics.productionDownloadBytes, ecosystem, project, tokenName),
      metadata: tallyFor(metrics.productionMetadataRequests, ecosystem, project, tokenName),
    });
  }

  return {
    recordLeak(l) {
      const [leak, cut] = capLeak(l.leak);
      const event = new RecordedActivityEvent({
        id: newEventId(l.at),
        time: isoTime(l.at),
        requestId: '',
        tokenId: l.tokenId,
        tokenName: l.tokenName,
        tokenType: l.tokenType,
        project: 'default',
        ecosystem: 'generic',
        kind: 'leaked',
        package: null,
        version: null,
        file: null,
        method: '',
        status: 0,
        bytes: 0,
        durationMs: 0,
        clientIp: l.clientIp,
        userAgent: null,
        sealed: false,
        aborted: false,
        truncated: NOTHING_TRUNCATED,
        ci: null,
        leak,
      });
      capEventFields(event);
      if (cut) event.truncated = [...event.truncated, 'leak']; // the last capped field: field order kept
      for (const runner of production) runner.enqueue(event);
    },
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
      const c = talliesFor(event.ecosystem, project, event.tokenName, event.sealed);
      if (event.kind === 'download') {
        // A download the client abandoned is not a download; the bytes it was sent still count.
        // Both series exist from a label set's first download, so either one's rate() has a start.
        c.downloads.inc(event.aborted ? 0 : 1);
        c.aborted.inc(event.aborted ? 1 : 0);
        c.bytes.inc(event.bytes);
      } else {
        c.metadata.inc();
      }
    },
  };
}
