/**
 * The start-up pack (tools/module-pack.js): a command's modules and their V8 code caches kept in one
 * file. These tests run a small project of their own in child processes, so the harness's own pack
 * is never involved: every case starts from an empty cache directory.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir, REPO } from '../harness/cli-helpers';

const PACK = path.join(REPO, 'tools', 'module-pack.js');

interface Project {
  readonly root: string;
  readonly cache: string;
  run(): { out: string; err: string; code: number };
  packs(): string[];
}

/**
 * A project with an entry script, a TypeScript-named module (plain JavaScript inside, compiled by the
 * identity function), a package under node_modules (both packed) and a relative require of a plain .js file (not packed: only
 * TypeScript and node_modules are; its resolution is remembered). The driver installs the
 * pack the way tools/register.js does.
 */
function project(): Project {
  const root = tmpDir('apf-pack-');
  const cache = path.join(root, '.cache');
  fs.mkdirSync(path.join(root, 'node_modules', 'dep'), { recursive: true });
  fs.writeFileSync(path.join(root, 'node_modules', 'dep', 'index.js'), "'use strict';\nexports.value = 'dep-1';\n");
  fs.writeFileSync(path.join(root, 'lib.js'), "'use strict';\nexports.lib = 'lib-file';\n");
  fs.writeFileSync(
    path.join(root, 'main.ts'),
    [
      "'use strict';",
      "const dep = require('dep');",
      "const lib = require('./lib');",
      'function boom() { throw new Error("boom"); }',
      "exports.report = () => [dep.value, lib.lib, (() => { try { boom(); } catch (e) { return /main\\.ts:\\d+/.test(e.stack) ? 'stack-names-file' : 'stack-lost'; } })()].join(' ');",
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(root, 'driver.js'),
    [
      "'use strict';",
      "const fs = require('node:fs');",
      "const path = require('node:path');",
      "const Module = require('node:module');",
      `const { installPack } = require(${JSON.stringify(PACK)});`,
      'const root = __dirname;',
      "const hook = (m, f) => m._compile(fs.readFileSync(f, 'utf8'), f);",
      'hook.apfRegister = true;',
      "Module._extensions['.ts'] = hook;",
      'const store = (file, data) => { fs.mkdirSync(path.dirname(file), { recursive: true }); const tmp = file + ".tmp"; fs.writeFileSync(tmp, data); fs.renameSync(tmp, file); };',
      "installPack({ cacheDir: path.join(root, '.cache'), salt: 'test', store, compileTs: (f) => fs.readFileSync(f, 'utf8'), root });",
      "process.stdout.write(require('./main.ts').report() + '\\n');",
      '',
    ].join('\n'),
  );
  return {
    root,
    cache,
    run: () => {
      const r = spawnSync(process.execPath, [path.join(root, 'driver.js')], { cwd: root, encoding: 'utf8', env: { ...process.env, APF_PACK_DEBUG: '1' } });
      return { out: r.stdout, err: r.stderr, code: r.status ?? 1 };
    },
    packs: () => {
      const dir = path.join(cache, 'packs');
      return fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
    },
  };
}

describe('the start-up pack', () => {
  it('is written by the first run, completed with code caches by the second, and left alone after', () => {
    const p = project();
    const first = p.run();
    expect(first.code).toBe(0);
    expect(first.out).toBe('dep-1 lib-file stack-names-file\n');
    expect(first.err).toMatch(/: none, loaded 2, dirty true/);
    expect(p.packs()).toHaveLength(1);
    const second = p.run();
    expect(second.out).toBe(first.out);
    // Served from the pack; the code caches V8 produced at exit are then added.
    expect(second.err).toMatch(/: 2 entries, loaded 2, dirty true/);
    const packFile = p.packs()[0] as string;
    const before = fs.readFileSync(packFile);
    const third = p.run();
    expect(third.out).toBe(first.out);
    expect(third.err).toMatch(/: 2 entries, loaded 2, dirty false/);
    expect(fs.readFileSync(packFile).equals(before)).toBe(true);
  });

  it('loads an edited module from its file, not from the pack', () => {
    const p = project();
    p.run();
    p.run();
    fs.writeFileSync(path.join(p.root, 'node_modules', 'dep', 'index.js'), "'use strict';\nexports.value = 'dep-2, edited';\n");
    const r = p.run();
    expect(r.out).toBe('dep-2, edited lib-file stack-names-file\n');
    expect(r.err).toMatch(/dirty true/);
    expect(p.run().out).toBe(r.out);
  });

  it('resolves again when a remembered file is gone', () => {
    const p = project();
    p.run();
    p.run();
    fs.rmSync(path.join(p.root, 'lib.js'));
    fs.mkdirSync(path.join(p.root, 'lib'));
    fs.writeFileSync(path.join(p.root, 'lib', 'index.js'), "'use strict';\nexports.lib = 'lib-dir';\n");
    const r = p.run();
    expect(r.code).toBe(0);
    expect(r.out).toBe('dep-1 lib-dir stack-names-file\n');
  });

  it('survives a damaged pack by rebuilding it', () => {
    const p = project();
    p.run();
    const packFile = p.packs()[0] as string;
    fs.writeFileSync(packFile, 'not a pack');
    const r = p.run();
    expect(r.out).toBe('dep-1 lib-file stack-names-file\n');
    expect(r.err).toMatch(/: none, loaded 2, dirty true/);
    expect(p.run().err).toMatch(/: 2 entries/);
  });
});

describe('apf with its pack', () => {
  it('prints the same run with and without the pack', () => {
    const cacheDir = tmpDir('apf-cache-');
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, [path.join(REPO, 'bin', 'apf'), 'run', 'scenarios/default.json'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, APF_CACHE_DIR: cacheDir, ...env } });
    const plain = run({ APF_PACK: '0' });
    expect(plain.status).toBe(0);
    expect(fs.existsSync(path.join(cacheDir, 'packs'))).toBe(false);
    const packed1 = run({});
    const packed2 = run({});
    expect(fs.readdirSync(path.join(cacheDir, 'packs'))).toHaveLength(1);
    expect(packed1.stdout).toBe(plain.stdout);
    expect(packed2.stdout).toBe(plain.stdout);
    expect(packed2.status).toBe(0);
  });
});
