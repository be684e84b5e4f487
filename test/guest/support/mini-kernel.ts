/** A GuestKernel on the MiniHost, for unit tests that play the host's part by hand. */
import type { GuestProfileName, GuestToggle } from '../../../guest/profiles';
import type { TaskSpec } from '../../../guest/program';
import type { ApfHandlers } from '../../../guest/handlers';
import { GuestKernel } from '../../../guest/kernel';
import { MiniHost } from './mini-host';

export interface Mini {
  readonly host: MiniHost;
  readonly kernel: GuestKernel;
  /** GPA of CPU n's APF area. */
  area(cpu: number): number;
  /** Play the host: flags := 1 and inject #PF(token) on `cpu`. */
  notPresent(cpu: number, token: number): void;
  /** Play a v5.8+ host: token := t and raise 0xf3 on `cpu`. */
  pageReady(cpu: number, token: number): void;
  /** Play a ≤5.7 host: reason := 2 and inject #PF(token). */
  pageReadyPf(cpu: number, token: number): void;
  runUntil(t: number, stop?: () => boolean): void;
  /** Run until a guest trace record with this event appears (after now). */
  runToEvent(event: string, limitNs?: number): void;
}

export function buildMini(o: {
  profile?: GuestProfileName;
  toggles?: Partial<Record<GuestToggle, boolean>>;
  tasks?: TaskSpec[];
  cpus?: number;
  features?: number;
  handlers?: Partial<ApfHandlers>;
  hungTaskTimeoutNs?: number;
  start?: boolean;
} = {}): Mini {
  const host = new MiniHost({ cpus: o.cpus ?? 1, features: o.features });
  const kernel = new GuestKernel({
    sim: host.sim,
    memory: host.mem,
    cpus: host.cpus,
    profile: o.profile ?? 'current',
    toggles: o.toggles,
    tasks: o.tasks ?? [],
    handlers: o.handlers,
    hungTaskTimeoutNs: o.hungTaskTimeoutNs,
    raiseIrq: (cpu, vector) => host.irq(cpu, vector),
    raiseNmi: (cpu) => host.nmi(cpu),
  });
  kernel.boot();
  if (o.start !== false) host.start();
  const area = (cpu: number): number => kernel.layout.apfAreaGpa(cpu);
  return {
    host,
    kernel,
    area,
    notPresent: (cpu, token) => {
      host.mem.writeU32(area(cpu), 1);
      host.exception(cpu, { kind: 'exception', vector: 14, errorCode: 0, cr2: token });
    },
    pageReady: (cpu, token) => {
      host.mem.writeU32(area(cpu) + 4, token >>> 0);
      host.irq(cpu, 0xf3);
    },
    pageReadyPf: (cpu, token) => {
      host.mem.writeU32(area(cpu), 2);
      host.exception(cpu, { kind: 'exception', vector: 14, errorCode: 0, cr2: token });
    },
    runUntil: (t, stop) => host.runUntil(t, stop),
    runToEvent: (event, limitNs = 50_000_000) => {
      const from = host.rec.records.length;
      host.runUntil(host.sim.now + limitNs, () => host.rec.records.slice(from).some((r) => r.event === event));
    },
  };
}
