/**
 * `dfs`: parses the command line (program.ts), runs the command and turns how it ended into the
 * process's exit code (exit.ts). Usage errors print one line naming what is wrong and a hint; errors
 * the project raises print their code and message; anything else is a bug and shows its stack.
 */
import { readFileSync } from "node:fs";
import { type Command, CommanderError } from "commander";
import { ExitCode, errorReport, exitCodeOf } from "./exit.js";
import { buildProgram } from "./program.js";

/** The version of this package (package.json), which `dfs --version` prints. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** "dfs bench e2e" of a command. */
function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** Every command of the tree, the root first. */
export function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap((c) => allCommands(c))];
}

/**
 * Errors of parsing go to stderr as "dfs <command>: <what is wrong>" and a hint naming the command's
 * help; they throw (exitOverride) instead of exiting, so that main decides the code.
 */
function conventions(program: Command): void {
  for (const cmd of allCommands(program)) {
    const path = pathOf(cmd);
    cmd
      .exitOverride()
      .showSuggestionAfterError(true)
      .showHelpAfterError(`(${path} --help shows the usage and examples)`)
      .configureOutput({
        outputError: (text, write) => write(text.replace(/^error: /, `${path}: `)),
      });
  }
}

/** Runs one dfs command; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.OK;
  const program = buildProgram(version(), (c) => {
    code = c;
  });
  conventions(program);
  let running = "dfs";
  program.hook("preAction", (_, action) => {
    running = pathOf(action);
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    // --help and --version end here too, with exit code 0; every other parse error is a usage error.
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    const exit = exitCodeOf(err);
    if (exit === ExitCode.USAGE)
      console.error(`${running}: ${errorReport(err)}\n(${running} --help shows the usage and examples)`);
    else if (exit !== ExitCode.OK) console.error(`${running}: ${errorReport(err)}`);
    return exit;
  }
}
