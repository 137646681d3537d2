/**
 * A command line from named options, in their order: `{ target: url, duration: 2, json: true }` is
 * `['--target', url, '--duration', '2', '--json']` (true: the bare flag).
 */
export function cliArgs(options: Record<string, string | number | true>): string[] {
  return Object.entries(options).flatMap(([name, value]) =>
    value === true ? [`--${name}`] : [`--${name}`, String(value)],
  );
}
