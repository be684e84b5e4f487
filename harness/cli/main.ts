/**
 * Entry point of the `apf` command (bin/apf and `npm start` load this file). Everything is in
 * cli.ts; this file only connects it to the process.
 */
import { runCli } from './cli';

function main(): void {
  let code: number;
  try {
    code = runCli(process.argv.slice(2));
  } catch (e) {
    // Only harness bugs get here: scenario and usage problems are reported by runCli.
    process.stderr.write(`apf: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    code = 1;
  }
  process.exitCode = code;
}

main();
