/**
 * Entry point of the `apf` command (bin/apf and `npm start` load this file). Everything is in
 * cli.ts; this file only connects it to the process.
 */
import { runCli } from './cli';

/**
 * A reader that goes away (`apf run ... | head`) closes the pipe under us: that ends the command
 * quietly with its status so far, instead of an unhandled EPIPE with a stack trace.
 */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && stream === process.stdout) process.stderr.write(`apf: cannot write to stdout: ${e.code ?? e.message}\n`);
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : e.code === 'EPIPE' ? 0 : 1);
    });
  }
}

function main(): void {
  quietOnClosedPipe();
  let code: number;
  try {
    code = runCli(process.argv.slice(2));
  } catch (e) {
    // Only with --debug (runCli reports everything else itself): a harness bug with its stack trace.
    process.stderr.write(`apf: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    code = 1;
  }
  process.exitCode = code;
}

main();
