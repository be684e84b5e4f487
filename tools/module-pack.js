// The start-up pack: what `apf` loads at every start, kept in one file so that the next start reads
// one file instead of several hundred.
//
// Starting `apf run` loads about 170 modules (the harness's TypeScript and zod's CommonJS). Without a
// pack each costs a module resolution (several stat calls), a read of the source, a read of its
// compiled form, and a compile. With a pack, a process reads one file holding, for every module the
// last process of the same kind loaded:
//   - the compiled JavaScript,
//   - V8's code cache for it, taken when that process exited, so it holds the bytecode of every
//     function the run used (not only the top level),
//   - the file's size and modification time when it was packed,
// and, for every `require` those modules made, the file it resolved to.
//
// A packed module is used only while its file still has the size and modification time it was packed
// with (one stat call); otherwise it is loaded the ordinary way and the pack is rewritten at exit.
// A resolution is reused only from the same requiring file with the same request; one that no longer
// holds (the file is gone) falls back to Node's own resolution. Each module still runs as its own
// script under its own file name, so error stacks name the real files. The pack is written at exit,
// to a private name and then renamed (parallel processes never see half a file), and only when this
// process loaded something the pack lacked or V8 rejected a cache (another Node version or V8 flags).
//
// A process's kind is its entry script plus its first non-option argument (`apf run`, `apf fuzz`,
// a fuzz worker thread ...): each kind has its own pack, so one command does not carry another's
// modules. APF_PACK=0 turns packs off; they are also off when source maps are on (--debug).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const FORMAT = 1;

/** A short stable hash of a string (FNV-1a, two lanes), for the pack's file name. */
function nameHash(s) {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x85ebca6b) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

function processKind() {
  let worker = false;
  try {
    worker = !require('node:worker_threads').isMainThread;
  } catch {
    // no worker_threads: the main thread
  }
  if (worker) return 'worker';
  const cmd = process.argv.slice(2).find((a) => !a.startsWith('-')) ?? '';
  return `${process.argv[1] ?? ''}\0${cmd}`;
}

function readPack(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return null;
  }
  try {
    const headLen = buf.readUInt32LE(0);
    const head = JSON.parse(buf.toString('utf8', 4, 4 + headLen));
    if (head.format !== FORMAT) return null;
    const base = 4 + headLen;
    const entries = new Map();
    for (const e of head.entries) entries.set(e.file, e);
    return { buf, base, entries, resolve: new Map(head.resolve) };
  } catch {
    return null; // damaged: rebuilt at exit
  }
}

/**
 * Installs the pack for this process. `salt` names the compiler and its settings (a change makes a
 * new pack); `store(file, data)` writes a cache file atomically; `compileTs(filename)` returns the
 * compiled JavaScript of a TypeScript file.
 */
function installPack({ cacheDir, salt, store, compileTs, root }) {
  const file = path.join(cacheDir, 'packs', `${nameHash(`${FORMAT}\0${salt}\0${process.version}\0${processKind()}`)}.pack`);
  const pack = readPack(file);
  let dirty = pack === null;
  /** In load order: { file, size, mtimeMs, code, cache (Buffer|null), script (vm.Script|null) }. */
  const loaded = [];
  const seen = new Set();
  const resolved = new Map();
  const nodeModules = path.join(root, 'node_modules') + path.sep;
  const packable = (filename) => filename.startsWith(root + path.sep) && !filename.startsWith(path.join(root, 'tools') + path.sep);

  const originalResolve = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, isMain, options) {
    const from = parent !== null && parent !== undefined && typeof parent.filename === 'string' ? parent.filename : null;
    if (from === null || isMain === true || options !== undefined) return originalResolve.call(this, request, parent, isMain, options);
    const key = `${from}\0${request}`;
    const hit = pack === null ? undefined : pack.resolve.get(key);
    if (hit !== undefined && fs.existsSync(hit)) {
      resolved.set(key, hit);
      return hit;
    }
    const out = originalResolve.call(this, request, parent, isMain, options);
    if (path.isAbsolute(out) && packable(out)) {
      resolved.set(key, out);
      if (hit !== out) dirty = true;
    }
    return out;
  };

  const makeRequire = (m) => {
    const req = (id) => m.require(id);
    req.resolve = (request, options) => Module._resolveFilename(request, m, false, options);
    req.resolve.paths = (request) => Module._resolveLookupPaths(request, m);
    Object.defineProperty(req, 'main', { get: () => process.mainModule, enumerable: true });
    req.extensions = Module._extensions;
    req.cache = Module._cache;
    return req;
  };

  /** Runs one packed module as its own script (its own file name in stacks). */
  const runPacked = (m, filename, e, stat) => {
    const code = pack.buf.toString('utf8', pack.base + e.code[0], pack.base + e.code[0] + e.code[1]);
    const cachedData = e.cache === null ? undefined : pack.buf.subarray(pack.base + e.cache[0], pack.base + e.cache[0] + e.cache[1]);
    const script = new vm.Script(Module.wrap(code), {
      filename,
      cachedData,
      importModuleDynamically: vm.constants === undefined ? undefined : vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    const fresh = cachedData === undefined || script.cachedDataRejected === true;
    if (fresh) dirty = true;
    loaded.push({ file: filename, size: stat.size, mtimeMs: stat.mtimeMs, code, cache: fresh ? null : cachedData, script: fresh ? script : null });
    script.runInThisContext({ displayErrors: true }).call(m.exports, m.exports, makeRequire(m), m, filename, path.dirname(filename));
  };

  /** The pack's entry for `filename` if the file is unchanged since it was packed, and its stat. */
  const lookup = (filename) => {
    if (!packable(filename) || seen.has(filename)) return { e: undefined, stat: undefined };
    seen.add(filename);
    let stat;
    try {
      stat = fs.statSync(filename);
    } catch {
      return { e: undefined, stat: undefined };
    }
    const e = pack === null ? undefined : pack.entries.get(filename);
    return { e: e !== undefined && e.size === stat.size && e.mtimeMs === stat.mtimeMs ? e : undefined, stat };
  };

  const tsHook = Module._extensions['.ts'];
  const packedTs = function (m, filename) {
    const { e, stat } = lookup(filename);
    if (e !== undefined) return runPacked(m, filename, e, stat);
    const code = compileTs(filename);
    if (stat !== undefined) {
      dirty = true;
      loaded.push({ file: filename, size: stat.size, mtimeMs: stat.mtimeMs, code, cache: null, script: null });
    }
    m._compile(code, filename);
  };
  packedTs.apfRegister = tsHook.apfRegister;
  Module._extensions['.ts'] = packedTs;

  const jsHook = Module._extensions['.js'];
  Module._extensions['.js'] = function (m, filename) {
    if (!filename.startsWith(nodeModules)) return jsHook.call(this, m, filename);
    const { e, stat } = lookup(filename);
    if (e !== undefined) return runPacked(m, filename, e, stat);
    jsHook.call(this, m, filename); // Node's own checks (module type, hashbang) on first sight
    // An ES module loaded through require() stays out: only CommonJS runs as a wrapped script.
    if (stat === undefined || Object.prototype.toString.call(m.exports) === '[object Module]') return;
    let code;
    try {
      code = fs.readFileSync(filename, 'utf8');
    } catch {
      return;
    }
    if (code.charCodeAt(0) === 0xfeff) code = code.slice(1);
    if (code.startsWith('#!')) return; // not wrappable as is: stays out of the pack
    dirty = true;
    loaded.push({ file: filename, size: stat.size, mtimeMs: stat.mtimeMs, code, cache: null, script: null });
  };

  process.once('exit', () => {
    if (process.env.APF_PACK_DEBUG === '1') process.stderr.write(`pack ${file}: ${pack === null ? 'none' : pack.entries.size + ' entries'}, loaded ${loaded.length}, dirty ${dirty}\n`);
    if (!dirty || loaded.length === 0) return;
    // Keep what the old pack had and this process did not load (another scenario's modules), while
    // its file is unchanged.
    const parts = [];
    const entries = [];
    let at = 0;
    const add = (file, size, mtimeMs, code, cache) => {
      const codeBuf = Buffer.from(code, 'utf8');
      parts.push(codeBuf);
      const entry = { file, size, mtimeMs, code: [at, codeBuf.length], cache: null };
      at += codeBuf.length;
      if (cache !== null && cache.length > 0) {
        parts.push(cache);
        entry.cache = [at, cache.length];
        at += cache.length;
      }
      entries.push(entry);
    };
    for (const l of loaded) {
      let cache = l.cache;
      if (l.script !== null) {
        try {
          cache = l.script.createCachedData();
        } catch {
          cache = null;
        }
      }
      add(l.file, l.size, l.mtimeMs, l.code, cache);
    }
    if (pack !== null) {
      for (const [f, e] of pack.entries) {
        if (seen.has(f)) continue;
        let stat;
        try {
          stat = fs.statSync(f);
        } catch {
          continue;
        }
        if (stat.size !== e.size || stat.mtimeMs !== e.mtimeMs) continue;
        const code = pack.buf.toString('utf8', pack.base + e.code[0], pack.base + e.code[0] + e.code[1]);
        const cache = e.cache === null ? null : pack.buf.subarray(pack.base + e.cache[0], pack.base + e.cache[0] + e.cache[1]);
        add(f, e.size, e.mtimeMs, code, cache);
      }
      for (const [k, v] of pack.resolve) if (!resolved.has(k)) resolved.set(k, v);
    }
    const head = Buffer.from(JSON.stringify({ format: FORMAT, entries, resolve: [...resolved] }), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(head.length, 0);
    store(file, Buffer.concat([len, head, ...parts]));
  });
}

module.exports = { installPack };
