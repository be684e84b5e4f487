/**
 * The HTML report in a real browser (Debian's chromium driven by playwright-core): the page loads
 * offline without console errors, shows two lanes per vCPU, the protocol arrows, sleeps, halts and
 * checker violations of known scenarios, and hovering a mark shows its trace record.
 *
 * .ci/run installs chromium when it is missing. Only when no chromium can be found at all does this
 * file print a SKIP line with the reason (and then checks only that the reason is true).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { cli, REPO, tmpDir } from './cli-helpers';

const CANDIDATES = [process.env.APF_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => p !== undefined && p !== '');
const executable = CANDIDATES.find((p) => fs.existsSync(p));
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const work = tmpDir();
const runs = path.join(work, 'runs');
let browser: BrowserContext | undefined;

afterAll(async () => {
  await browser?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

interface Loaded {
  readonly page: Page;
  readonly errors: string[];
  readonly requests: string[];
}

async function open(file: string): Promise<Loaded> {
  if (browser === undefined) {
    // A fresh profile directory (playwright passes it as --user-data-dir).
    const profile = fs.mkdtempSync(path.join(work, 'profile-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: executable, args: FLAGS, viewport: { width: 1280, height: 900 } });
  }
  const page = await browser.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto('file://' + file, { waitUntil: 'load' });
  return { page, errors, requests };
}

if (executable === undefined) {
  describe('the HTML report in a browser', () => {
    it('cannot run here: no chromium', () => {
      const reason = `no chromium at ${CANDIDATES.join(', ')} (set APF_CHROMIUM or install Debian's chromium; .ci/run does)`;
      process.stderr.write(`SKIP test/harness/report-browser.test.ts: ${reason}\n`);
      expect(CANDIDATES.some((p) => fs.existsSync(p))).toBe(false);
    });
  });
} else {
  describe('the HTML report in a browser', () => {
    jest.setTimeout(120_000);

    it('of the default scenario: loads offline without errors, lanes per vCPU, arrows, sleeps, hover shows the record', async () => {
      const report = path.join(work, 'default.html');
      const r = cli(['run', 'scenarios/default.json', '--quiet', '--report', report, '--runs-dir', runs], { cwd: REPO });
      expect(r.code).toBe(0);
      const { page, errors, requests } = await open(report);
      expect(await page.locator('.lane').count()).toBe(4);
      expect(await page.locator('.lane-label').allTextContents()).toEqual(['vCPU 0 host (KVM)', 'vCPU 0 guest', 'vCPU 1 host (KVM)', 'vCPU 1 guest']);
      expect(await page.locator('.arrow.not-present').count()).toBe(2);
      expect(await page.locator('.arrow.page-ready').count()).toBe(2);
      expect(await page.locator('.arrow.wake-all').count()).toBe(2);
      expect(await page.locator('.arrow.ack').count()).toBe(4);
      expect(await page.locator('.sleep').count()).toBe(2);
      expect(await page.locator('.violation').count()).toBe(0);
      expect(await page.locator('.verdict').textContent()).toMatch(/^PASS default: /);
      expect(await page.locator('pre.replay').textContent()).toBe('npx apf run scenarios/default.json --seed 1 --guest current --host current');
      expect(await page.locator('table.summary').textContent()).toContain('asyncPfInjected2');
      await page.locator('.arrow.not-present').first().hover();
      const tip = page.locator('#tip');
      expect(await tip.isVisible()).toBe(true);
      expect(await tip.textContent()).toMatch(/kvm_async_pf_not_present: token 0x[0-9a-f]+ gva 0x[0-9a-f]+/);
      expect(errors).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    });

    it('of a failing run and an artificial halt: violations and halts are marked', async () => {
      const report = path.join(work, 'suite.html');
      const r = cli(['run', 'scenarios/regressions/smi-clears-apf-queue.json', 'scenarios/kernel-fault-artificial-halt.json', '--jobs', '0', '--report', report, '--runs-dir', runs], { cwd: REPO });
      expect(r.out).toContain('PASS scenarios/kernel-fault-artificial-halt.json');
      const { page, errors } = await open(report);
      expect(await page.locator('table.verdicts tbody tr').count()).toBe(2);
      expect(await page.locator('section.run').count()).toBe(2);
      expect(await page.locator('section.run').nth(1).locator('.halt').count()).toBeGreaterThan(0);
      expect(errors).toEqual([]);

      const buggy = path.join(work, 'buggy.html');
      const b = cli(['run', 'scenarios/regressions/smi-clears-apf-queue.json', '--variant', 'buggy', '--toggle', 'keep_queue_on_cr0_pg=off', '--quiet', '--report', buggy, '--runs-dir', runs], { cwd: REPO });
      expect(b.out).toMatch(/^(PASS|FAIL) /);
      const v = await open(buggy);
      expect(await v.page.locator('.violation').count()).toBeGreaterThan(0);
      expect(await v.page.locator('table.violations').textContent()).toContain('hung-task');
      await v.page.locator('.violation').first().hover();
      expect(await v.page.locator('#tip').textContent()).toContain('violation: checker=hung-task');
      expect(v.errors).toEqual([]);
    });

    it('of a diff: both runs and the divergence row, highlighted, hover shows the record', async () => {
      const report = path.join(work, 'diff.html');
      const r = cli(['diff', 'scenarios/regressions/token-zero-wraparound.json', '--variant', 'buggy', '--report', report], { cwd: REPO, env: { APF_RUNS_DIR: runs } });
      expect(r.code).toBe(1);
      const { page, errors } = await open(report);
      expect(await page.locator('section.run').count()).toBe(2);
      const div = page.locator('table.diff tr.divergence');
      expect(await div.count()).toBe(1);
      expect(await div.textContent()).toContain('token 0 gva');
      // (A string: this file is type-checked without the DOM library.)
      expect(await page.evaluate("getComputedStyle(document.querySelector('table.diff tr.divergence td')).backgroundColor")).toBe('rgb(255, 241, 194)');
      await div.locator('td').nth(2).hover();
      expect(await page.locator('#tip').textContent()).toMatch(/kvm_async_pf_not_present: token 0 gva 0x/);
      expect(errors).toEqual([]);
    });
  });
}
