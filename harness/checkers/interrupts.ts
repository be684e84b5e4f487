/**
 * interrupts: interrupts are neither lost nor doubled. At the LAPIC level, every accepted
 * (non-coalesced) interrupt is injected exactly once; at the protocol level, every page-ready
 * the host sent (notified) is handled exactly once by the guest (`sysvec_kvm_asyncpf_interrupt`,
 * or a #PF with reason PAGE_READY on old guests).
 */
import type { TraceRecordHead } from '../../shared-abi/trace-catalogue';
import { HYPERVISOR_CALLBACK_VECTOR } from '../../shared-abi/vectors';
import { Time } from '../scenario/scalars';
import { ABRUPT_OUTCOMES, at, defineChecker, eventSet, hex, isKernelGone, KERNEL_GONE } from './types';

/** Default time an accepted interrupt may still be pending at the end of the run. */
export const INTERRUPT_DEFAULT_GRACE = 1_000_000;

const PAGE_READY = 2;

export const interrupts = defineChecker({
  name: 'interrupts',
  description: 'interrupts neither lost nor doubled (LAPIC accept vs inject; page-ready sent vs handled)',
  invariant:
    'Per vCPU and vector, injections never outnumber accepted interrupts, and none accepted more than `grace` (default 1ms) before the end ' +
    'of the run is still pending; likewise page-ready events sent by the host and handled by the guest.',
  options: { grace: Time.optional().meta({ description: 'How long an interrupt may still be pending at the end (default 1ms).' }) },
  events: eventSet(['kvm_apic_accept_irq', 'kvm_inj_virq', 'kvm_async_pf_ready', 'sysvec_kvm_asyncpf_interrupt', 'kvm_read_and_reset_apf_flags', 'bare_interrupt', 'bare_exception', 'kvm_lapic_disable', 'kvm_apic_eoi', 'kvm_vcpu_reset', 'kvm_vcpu_init', 'kvm_vcpu_destroy', 'kvm_async_pf_disable', 'kvm_vm_destroy', 'cpu_offline', 'cpu_online'], KERNEL_GONE),
  create(opts, report) {
    const grace = opts.grace ?? INTERRUPT_DEFAULT_GRACE;
    /** `${cpu}:${vector}` -> accept times of pending interrupts. */
    const irqs = new Map<string, number[]>();
    /** cpu -> times of page-ready sent and not yet handled. */
    const ready = new Map<number, number[]>();
    /**
     * cpu -> page-ready sent before APF or the LAPIC was disabled and not handled yet: the
     * interrupt is already in the LAPIC, so the guest may still handle it (a migration restore
     * re-enables APF underneath it, the LAPIC comes back with IRR intact) or may not (its handler
     * sees APF off). Neither is a finding.
     */
    const late = new Map<number, number[]>();
    /**
     * `${cpu}:${vector}` -> interrupts accepted before the LAPIC was software-disabled: IRR survives
     * the disable (docs/host.md, decision 19), so they may be injected after a re-enable, or never.
     */
    const held = new Map<string, number[]>();
    /** CPUs the guest took offline (cli; hlt until INIT): what is pending there waits, it is not lost. */
    const offline = new Set<number>();
    /** cpu -> vector -> injection time of interrupts in service (ISR bit set, no EOI yet). */
    const inService = new Map<number, Map<number, number>>();
    /**
     * Why nothing more is delivered on `cpu` at `vec`'s priority: an in-service vector of the same
     * or a higher priority class whose handler never wrote EOI. Empty when none.
     */
    const noEoi = (cpu: number, vec: number): string => {
      const isr = inService.get(cpu);
      if (isr === undefined) return '';
      let worst: [number, number] | undefined;
      for (const [v, t] of isr) if ((v & 0xf0) >= (vec & 0xf0) && (worst === undefined || v > worst[0])) worst = [v, t];
      if (worst === undefined) return '';
      return `: the ISR bit for vector ${hex(worst[0])} (injected at ${at(worst[1])}) is still set: its handler returned without an EOI, so the LAPIC holds back every interrupt of priority class ${hex(vec & 0xf0)} and below`;
    };

    const resetCpu = (cpu: number): void => {
      for (const k of [...irqs.keys()]) if (cpu < 0 || k.startsWith(`${cpu}:`)) irqs.delete(k);
      for (const k of [...held.keys()]) if (cpu < 0 || k.startsWith(`${cpu}:`)) held.delete(k);
      if (cpu < 0) inService.clear();
      else inService.delete(cpu);
      if (cpu < 0) {
        ready.clear();
        late.clear();
      } else {
        ready.delete(cpu);
        late.delete(cpu);
      }
    };
    const handled = (rec: TraceRecordHead, what: string): void => {
      const q = ready.get(rec.cpu);
      if (q !== undefined && q.length > 0) {
        q.shift();
        return;
      }
      const l = late.get(rec.cpu);
      if (l !== undefined && l.length > 0) {
        l.shift();
        return;
      }
      report(rec.t, rec.cpu, `guest handled a page-ready on cpu${rec.cpu} (${what}) that the host did not send: a doubled or spurious page-ready`);
    };

    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'kvm_apic_accept_irq': {
            const { vec } = rec;
            // A startup IPI carries a vector but is no interrupt: nothing is injected for it.
            if (rec.coalesced || rec.dm === 'startup') return;
            const cpu = rec.cpu >= 0 ? rec.cpu : rec.apicid;
            const key = `${cpu}:${vec}`;
            const q = irqs.get(key);
            if (q === undefined) irqs.set(key, [rec.t]);
            else q.push(rec.t);
            return;
          }
          case 'kvm_inj_virq': {
            const vec = rec.irq;
            let isr = inService.get(rec.cpu);
            if (isr === undefined) inService.set(rec.cpu, (isr = new Map()));
            isr.set(vec, rec.t);
            const key = `${rec.cpu}:${vec}`;
            const q = irqs.get(key);
            if (q !== undefined && q.length > 0) {
              q.shift();
              return;
            }
            const h = held.get(key);
            if (h !== undefined && h.length > 0) {
              h.shift();
              return;
            }
            report(rec.t, rec.cpu, `vector ${hex(vec)} injected into cpu${rec.cpu} with no accepted interrupt pending: a doubled interrupt`);
            return;
          }
          case 'kvm_async_pf_ready': {
            if (!rec.notified) return;
            const q = ready.get(rec.cpu);
            if (q === undefined) ready.set(rec.cpu, [rec.t]);
            else q.push(rec.t);
            return;
          }
          case 'sysvec_kvm_asyncpf_interrupt': {
            handled(rec, `sysvec_kvm_asyncpf_interrupt token ${hex(rec.token)}`);
            return;
          }
          case 'kvm_read_and_reset_apf_flags':
            if (rec.flags === PAGE_READY) handled(rec, '#PF with reason PAGE_READY');
            return;
          case 'bare_interrupt':
          case 'bare_exception':
            if (rec.result === 'page_ready' || rec.result === 'wake_all') handled(rec, `bare guest ${rec.result}`);
            return;
          case 'kvm_apic_eoi':
            inService.get(rec.cpu)?.delete(rec.vector);
            return;
          case 'kvm_lapic_disable':
            for (const [k, q] of [...irqs]) {
              if (!k.startsWith(`${rec.cpu}:`)) continue;
              held.set(k, [...(held.get(k) ?? []), ...q]);
              irqs.delete(k);
            }
            late.set(rec.cpu, [...(late.get(rec.cpu) ?? []), ...(ready.get(rec.cpu) ?? [])]);
            ready.delete(rec.cpu);
            return;
          case 'kvm_vcpu_reset':
          case 'kvm_vcpu_init':
          case 'kvm_vcpu_destroy':
          case 'kvm_async_pf_disable':
            if (rec.event !== 'kvm_async_pf_disable') resetCpu(rec.cpu);
            else {
              late.set(rec.cpu, [...(late.get(rec.cpu) ?? []), ...(ready.get(rec.cpu) ?? [])]);
              ready.delete(rec.cpu);
            }
            return;
          case 'kvm_vm_destroy':
            resetCpu(-1);
            return;
          case 'cpu_offline':
            if (rec.src === 'guest') offline.add(rec.cpu);
            return;
          case 'cpu_online':
            if (rec.src === 'guest') offline.delete(rec.cpu);
            return;
          default:
            if (rec.src === 'guest' && isKernelGone(rec.event)) resetCpu(-1);
        }
      },
      finish(end) {
        if (ABRUPT_OUTCOMES.has(end.outcome)) return;
        for (const [key, q] of irqs) {
          const first = q[0];
          if (first === undefined || end.t - first < grace) continue;
          const [cpu, vec] = key.split(':').map(Number);
          if (offline.has(cpu ?? -1)) continue;
          const why = noEoi(cpu ?? -1, vec ?? 0);
          report(end.t, cpu ?? -1, `vector ${hex(vec ?? 0)} accepted on cpu${cpu} at ${at(first)} was never injected${why === '' ? ': a lost interrupt' : why}`);
        }
        for (const [cpu, q] of ready) {
          const first = q[0];
          if (first === undefined || end.t - first < grace || offline.has(cpu)) continue;
          const why = noEoi(cpu, HYPERVISOR_CALLBACK_VECTOR);
          report(end.t, cpu, `page-ready sent to cpu${cpu} at ${at(first)} was never handled by the guest${why === '' ? ': a lost page-ready' : why}`);
        }
      },
    };
  },
});
