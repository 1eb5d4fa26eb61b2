import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Peak resident memory (VmHWM) of a process in MB, from /proc (Linux); 0 once it has exited. */
export function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * CPU time (user + system, every thread) a live process has used so far, in seconds; 0 when it
 * cannot be read (not Linux, the process gone). Clock ticks are 100 per second on Linux.
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The fields after the command name (which may hold spaces) start after its ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** A TCP port free on 127.0.0.1 right now (for a child process's config). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/** A process whose CPU is followed over a phase of a benchmark. */
export interface Followed {
  readonly name: string;
  readonly pid: number;
}

/**
 * CPU used over a phase, in cores (CPU seconds per second), by each followed process and by this
 * process (the benchmark's own clients and pollers): call it at the phase's start and the function
 * it returns at the phase's end. A process that cannot be read (gone, not Linux) reads 0.
 */
export function followCpu(procs: readonly Followed[]): () => { name: string; cores: number }[] {
  const t0 = performance.now();
  const before = procs.map((p) => cpuSeconds(p.pid));
  const self0 = process.cpuUsage();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    return [
      ...procs.map((p, i) => ({ name: p.name, cores: (cpuSeconds(p.pid) - before[i]!) / seconds })),
      { name: "this bench (clients, poller)", cores: (self.user + self.system) / 1e6 / seconds },
    ];
  };
}
