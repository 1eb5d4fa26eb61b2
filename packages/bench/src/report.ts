import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" }).trim().split("\n")[0]!;
  } catch {
    return "unknown";
  }
}

/** One line describing this machine, for every benchmark record. */
export function machineLine(): string {
  const cpu = cpus();
  return [
    `${cpu.length} cores (${cpu[0]?.model.trim() ?? "unknown CPU"})`,
    `${Math.round(totalmem() / 1024 ** 3)} GiB`,
    `Node ${process.version}`,
    version("mariadbd", ["--version"])
      .replace(/^.*Ver\s+/, "MariaDB ")
      .replace(/\s+for.*$/, ""),
    version("nats-server", ["--version"]),
  ].join(", ");
}

/** Appends a dated section to docs/benchmarks.md. */
export function recordBenchmark(root: string, title: string, command: string, body: string): string {
  const file = join(root, "docs", "benchmarks.md");
  if (!existsSync(file)) {
    writeFileSync(
      file,
      "# Benchmarks\n\nFigures measured on this project's machines with `dfs bench`. Newest last.\nEach section says when, with which command, on which machine.\n",
    );
  }
  const date = new Date().toISOString().replace("T", " ").slice(0, 16);
  const section = `\n## ${title} (${date} UTC)\n\nCommand: \`${command}\`\n\nMachine: ${machineLine()}\n\n${body.trim()}\n`;
  appendFileSync(file, section);
  // The project's formatter owns Markdown tables too (npm test checks them): format what was added.
  spawnSync(
    process.execPath,
    [join(root, "node_modules", "@biomejs", "biome", "bin", "biome"), "format", "--write", file],
    {
      stdio: "ignore",
    },
  );
  return file;
}
