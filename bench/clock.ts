/** Small helpers shared by the method benches: wall and process-CPU clocks, `--name value` flags. */

/** Starts a clock; calling the result gives seconds of wall time and of process CPU since then. */
export function clock(): () => { wall: number; cpu: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
  };
}

/** The value after `--name` on the command line, or `dflt`. */
export function arg(name: string, dflt: string, args = process.argv.slice(2)): string {
  return args.includes(name) ? args[args.indexOf(name) + 1] : dflt;
}
