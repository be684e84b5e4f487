/**
 * The SEND_ALWAYS matrix (docs/send-always.md): the checked-in document is what `apf compare
 * --markdown` prints for the context scenarios today, and the matrix says what the spec says.
 */
import * as fs from 'node:fs';
import type { CompareCell } from '../../harness/cli/commands/compare';
import { native } from '../support/native';

// The matrix runs outside Jest's sandbox (test/support/native.ts).
const { contextFiles, MATRIX_GUESTS, MATRIX_HOSTS, matrixCells, SEND_ALWAYS_DOC, sendAlwaysDoc } = native<typeof import('../../harness/tools/send-always-doc')>('harness/tools/send-always-doc');

const IF_ON = ['preemptible-kernel', 'preempt-disabled', 'spinlock-held', 'rcu-read-side', 'idle-task', 'copy-from-user'];
const IF_OFF = ['irqs-disabled', 'nmi-handler'];

describe('the SEND_ALWAYS matrix', () => {
  const cells = matrixCells();
  const cell = (context: string, guest: string, host: string): CompareCell => {
    const c = cells.find((x) => x.context === context && x.guest === guest && x.host === host);
    if (c === undefined) throw new Error(`no cell ${context} / ${guest} / ${host}`);
    return c;
  };

  it('has one run per context × guest × host', () => {
    expect(contextFiles()).toHaveLength(8);
    expect(cells).toHaveLength(8 * MATRIX_GUESTS.length * MATRIX_HOSTS.length);
    expect(new Set(cells.map((c) => c.context))).toEqual(new Set([...IF_ON, ...IF_OFF]));
  });

  it('interrupts off (IRQs disabled, NMI handler): a synchronous fault for every guest on every host', () => {
    for (const ctx of IF_OFF) for (const c of cells.filter((x) => x.context === ctx)) {
      expect([ctx, c.guest, c.host, c.syncFaults, c.asyncPfInjected, c.artificialHalts, c.outcome]).toEqual([ctx, c.guest, c.host, 1, 0, 0, 'completed']);
    }
  });

  it('SEND_ALWAYS honoured: the v5.2 guest gets the async #PF in kernel mode, sleeps only where it may schedule and halts elsewhere', () => {
    for (const ctx of IF_ON) {
      const c = cell(ctx, 'linux-5.2', 'linux-4.19');
      const wait = ctx === 'preemptible-kernel' || ctx === 'copy-from-user' ? 'schedule' : 'halt';
      expect([ctx, c.asyncPfInjected, c.artificialHalts, c.guestWait, c.outcome]).toEqual([ctx, 1, 0, wait, 'completed']);
    }
  });

  it('SEND_ALWAYS dropped by the guest or ignored by the host: artificial halts, and on v4.19 a page-ready the guest never asked for', () => {
    for (const ctx of IF_ON) {
      for (const [guest, host] of [['linux-5.2-user-only', 'linux-4.19'], ['linux-5.2', 'linux-4.19+honour_send_always=off']] as const) {
        const c = cell(ctx, guest, host);
        expect([ctx, guest, host, c.asyncPfInjected, c.artificialHalts, Object.keys(c.fired)]).toEqual([ctx, guest, host, 0, 1, ['apf-answered']]);
      }
    }
  });

  it('a host that injects at CPL 0 regardless: the ≤5.7 guests cope, the current guest panics in kernel mode', () => {
    for (const ctx of IF_ON) {
      expect(cell(ctx, 'linux-5.2-user-only', 'linux-4.19+cpl0_needs_send_always=off')).toMatchObject({ asyncPfInjected: 1, outcome: 'completed' });
      expect(cell(ctx, 'current', 'current+cpl0_needs_send_always=off')).toMatchObject({ outcome: 'panic', panic: 'Host injected async #PF in kernel mode' });
      expect(cell(ctx, 'current', 'current')).toMatchObject({ asyncPfInjected: 0, artificialHalts: 1, outcome: 'completed' });
    }
  });

  it('no PV delivery across eras: old guest on the current host, current guest on the v4.19 host', () => {
    for (const ctx of IF_ON) {
      expect(cell(ctx, 'linux-5.2', 'current')).toMatchObject({ asyncPfInjected: 0, artificialHalts: 1 });
      expect(cell(ctx, 'current', 'linux-4.19')).toMatchObject({ asyncPfInjected: 0, artificialHalts: 1 });
    }
  });

  it('docs/send-always.md is up to date (regenerate: npx ts-node --transpile-only harness/tools/send-always-doc.ts)', () => {
    expect(fs.readFileSync(SEND_ALWAYS_DOC, 'utf8')).toBe(sendAlwaysDoc(cells));
  });
});
