/**
 * The command line of a generated doc: write it, or with `--check` compare it with the file on
 * disk and exit 1 when they differ (the tests call the generators directly).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes `text` to `file`, or checks it with `--check`; `tool` is the generator's path for the hint. */
export function writeOrCheckDoc(file: string, text: string, tool: string): void {
  const shown = path.relative(process.cwd(), file);
  if (process.argv.includes('--check')) {
    const onDisk = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (onDisk !== text) {
      process.stderr.write(`${shown} is stale: run npx ts-node --transpile-only ${tool}\n`);
      process.exitCode = 1;
    }
    return;
  }
  fs.writeFileSync(file, text);
  process.stdout.write(`wrote ${shown} (${text.split('\n').length} lines)\n`);
}
