import type { Registry } from 'prom-client';

/** What /metrics serves from: this process's registry, or (TOLLGATE_WORKERS > 1) the cluster's. */
export type MetricsSource = Pick<Registry, 'contentType' | 'metrics'> &
  Partial<Pick<Registry, 'getSingleMetric' | 'getSingleMetricAsString'>>;

/** `?name=` values a scrape may pass: metric family names, as Prometheus spells them. */
export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** More names than this in one scrape is refused (400): the filter is for a few families. */
export const MAX_METRIC_NAMES = 64;

/**
 * The exposition of the named metric families only, in the order given, each once; unknown
 * names are left out. From a registry only these families are collected, so a scrape that
 * asks for a few counters does not pay for the others (the Production token gauges read
 * every token from the store). From the cluster's source the whole exposition is gathered
 * and the families picked out of it.
 */
export async function selectMetrics(source: MetricsSource, names: readonly string[]): Promise<string> {
  const wanted = [...new Set(names)];
  let blocks: string[];
  if (source.getSingleMetric && source.getSingleMetricAsString) {
    blocks = [];
    for (const name of wanted) {
      if (source.getSingleMetric(name)) blocks.push(await source.getSingleMetricAsString(name));
    }
  } else {
    // prom-client separates families with a blank line; each starts with "# HELP <name> ".
    const byName = new Map<string, string>();
    for (const block of (await source.metrics()).split('\n\n')) {
      const name = /^# HELP (\S+) /.exec(block)?.[1];
      if (name !== undefined) byName.set(name, block.trimEnd());
    }
    blocks = wanted.flatMap((name) => byName.get(name) ?? []);
  }
  return blocks.length === 0 ? '' : `${blocks.join('\n\n')}\n`;
}
