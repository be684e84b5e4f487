/**
 * Campaign progress for people: a bar redrawn in place on a terminal, plain periodic lines
 * otherwise (CI logs). Wall-clock figures only; nothing here feeds back into the campaign.
 */
import type { CampaignProgress } from './campaign';

export interface ProgressReporter {
  update(p: CampaignProgress): void;
  /** Clears the bar (TTY) before the summary is printed. */
  end(): void;
}

const BAR = 24;
const PLAIN_EVERY_MS = 2000;

function rate(p: CampaignProgress, runStartMs: number): string {
  const s = (p.elapsedMs - runStartMs) / 1000;
  return s > 0 ? `${Math.round(p.done / s)} runs/s` : '- runs/s';
}

export function progressReporter(write: (text: string) => void, tty: boolean): ProgressReporter {
  let lastPlain = -Infinity;
  let drawn = false;
  let runStartMs = 0;
  let phase: CampaignProgress['phase'] = 'starting';
  return {
    update(p) {
      if (p.phase === 'running' && phase === 'starting') runStartMs = p.elapsedMs;
      const changed = p.phase !== phase;
      phase = p.phase;
      const fails = `${p.failures} failure${p.failures === 1 ? '' : 's'}`;
      if (p.phase === 'done' || (p.phase === 'shrinking' && p.total === 0)) return;
      let line: string;
      if (p.phase === 'starting') line = 'starting workers...';
      else if (p.phase === 'shrinking') line = `shrinking ${p.total} failing run${p.total === 1 ? '' : 's'} (${p.done} done), ${fails}`;
      else {
        const frac = p.total > 0 ? p.done / p.total : 0;
        const filled = Math.round(frac * BAR);
        line = tty
          ? `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${p.done}/${p.total}  ${rate(p, runStartMs)}  ${fails}`
          : `fuzz: ${p.done}/${p.total} runs (${Math.floor(frac * 100)}%), ${rate(p, runStartMs)}, ${fails}`;
      }
      if (tty) {
        write(`\r\x1b[K${line}`);
        drawn = true;
        return;
      }
      if (changed || p.elapsedMs - lastPlain >= PLAIN_EVERY_MS) {
        lastPlain = p.elapsedMs;
        write(line + '\n');
      }
    },
    end() {
      if (tty && drawn) write('\r\x1b[K');
      drawn = false;
    },
  };
}
