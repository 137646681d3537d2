import type { Registry } from 'prom-client';

/**
 * Counter and histogram for metrics moved on every proxied request.
 *
 * prom-client's children still build a label object, validate it and hash it on every inc() or
 * observe(), a visible cost per request in the bench's CPU profile. These keep
 * one slot of plain numbers per label set, resolved once by labels(), and hand prom-client the
 * totals when scraped: they implement its metric contract (`get()`, `reset()`, name, help, type,
 * aggregator), so the registry, the text format and the cluster aggregation treat them like its
 * own. Label values must be bounded (they are: token type and status class).
 */

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Value[];
  aggregator: 'sum';
}

interface HotOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

abstract class HotMetric<L extends string, Slot> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly aggregator = 'sum' as const;
  protected readonly slots = new Map<string, { labels: Record<string, string>; slot: Slot }>();

  constructor(options: HotOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** The slot for these label values (in labelNames order), made on first use. */
  protected slotFor(values: readonly string[]): Slot {
    if (values.length !== this.labelNames.length) {
      throw new TypeError(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let entry = this.slots.get(key);
    if (!entry) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i]!;
      });
      entry = { labels, slot: this.newSlot() };
      this.slots.set(key, entry);
    }
    return entry.slot;
  }

  protected abstract newSlot(): Slot;
  abstract get(): Promise<MetricData>;

  reset(): void {
    this.slots.clear();
  }
}

export class HotCounter<L extends string> extends HotMetric<L, { value: number }> {
  readonly type = 'counter' as const;

  labels(...values: string[]): { inc(amount?: number): void } {
    const slot = this.slotFor(values);
    return {
      inc(amount = 1) {
        slot.value += amount;
      },
    };
  }

  protected newSlot() {
    return { value: 0 };
  }

  async get(): Promise<MetricData> {
    const values: Value[] = [];
    for (const { labels, slot } of this.slots.values()) values.push({ labels: { ...labels }, value: slot.value });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

interface HistogramSlot {
  /** Observations per bucket (not cumulative); the last one is above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class HotHistogram<L extends string> extends HotMetric<L, HistogramSlot> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];

  constructor(options: HotOptions<L> & { buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  labels(...values: string[]): { observe(value: number): void } {
    const slot = this.slotFor(values);
    const { buckets } = this;
    return {
      observe(value) {
        if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
        let i = 0;
        while (i < buckets.length && value > buckets[i]!) i++;
        slot.counts[i]!++;
        slot.sum += value;
        slot.count++;
      },
    };
  }

  protected newSlot(): HistogramSlot {
    return { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }

  /** As prom-client's Histogram exports it: cumulative buckets, +Inf, _sum, _count. */
  async get(): Promise<MetricData> {
    const values: Value[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const { labels, slot } of this.slots.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += slot.counts[i]!;
        values.push({ labels: { le, ...labels }, value: cumulative, metricName: bucketName });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: slot.count, metricName: bucketName });
      values.push({ labels: { ...labels }, value: slot.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: slot.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
