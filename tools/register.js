// A require hook for the harness's TypeScript: each .ts file is compiled with @swc/core's
// transformSync (types are stripped, not checked: `npm run typecheck` does that) and the output is
// cached under .apf/cache/, keyed by a hash of the source text, the file's path and the compiler
// settings. The sources are always what runs: an edited file has a new hash and is compiled again,
// there is no build step to forget. Each output has its source map beside it, read only when source
// maps are on (--debug, or APF_SOURCE_MAPS=1): stack traces then point at the TypeScript lines.
//
// On top of that, tools/module-pack.js keeps what a command loads in one file with V8's code cache,
// so that a start reads one file instead of one per module.
//
// Used by bin/apf, the npm scripts (node -r ./tools/register.js) and the fuzz worker threads.
// Without @swc/core (a devDependency) it falls back to ts-node in transpile-only mode.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');

const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.APF_CACHE_DIR || path.join(ROOT, '.apf', 'cache');
const OPTIONS = {
  swcrc: false,
  configFile: false,
  sourceMaps: true,
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
};

/**
 * Whether this process (or worker thread) is one of the harness's own: its entry script is in the
 * checkout, outside node_modules. A test runner that loads the harness into its own worker processes
 * keeps Node's loader as it is.
 */
function ownProcess() {
  try {
    if (!require('node:worker_threads').isMainThread) return true;
  } catch {
    // no worker_threads: the main thread
  }
  const entry = process.argv[1] === undefined ? '' : path.resolve(process.argv[1]);
  return entry.startsWith(ROOT + path.sep) && !entry.startsWith(path.join(ROOT, 'node_modules') + path.sep);
}

function install() {
  if (Module._extensions['.ts'] !== undefined && Module._extensions['.ts'].apfRegister === true) return;
  let swcVersion;
  try {
    swcVersion = require('@swc/core/package.json').version;
  } catch {
    require('ts-node').register({ transpileOnly: true, project: path.join(ROOT, 'tsconfig.json') });
    return;
  }
  // Source maps cost about a tenth of a second at every start (Node decodes each module's map as it
  // loads), and only a stack trace needs them: `--debug` (the only way apf shows one) or
  // APF_SOURCE_MAPS=1 turns them on; node's own --enable-source-maps works as usual.
  const wantMaps = process.argv.includes('--debug') || process.env.APF_SOURCE_MAPS === '1';
  if (wantMaps && typeof process.setSourceMapsEnabled === 'function') process.setSourceMapsEnabled(true);
  const salt = `${swcVersion}\0${JSON.stringify(OPTIONS)}\0`;
  let swc = null;
  let cacheOk = true;
  /** Writes to a private name, then renames: concurrent processes never see half a file. */
  const store = (file, data) => {
    if (!cacheOk) return;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      fs.writeFileSync(tmp, data);
      fs.renameSync(tmp, file);
    } catch {
      cacheOk = false; // a read-only checkout: compile every time
    }
  };
  /** The compiled JavaScript of `source` and where it is cached. */
  const compile = (source, filename) => {
    const key = require('node:crypto').createHash('sha1').update(salt).update(filename).update('\0').update(source).digest('hex');
    const file = path.join(CACHE, key.slice(0, 2), `${key}.js`);
    if (cacheOk) {
      try {
        return { code: fs.readFileSync(file, 'utf8'), file };
      } catch {
        // not cached yet
      }
    }
    if (swc === null) swc = require('@swc/core');
    const out = swc.transformSync(source, Object.assign({ filename }, OPTIONS));
    // The map goes beside the code: Node reads it only when source maps are on (--debug).
    const code = out.map === undefined ? out.code : `${out.code}\n//# sourceMappingURL=${path.basename(file)}.map\n`;
    if (out.map !== undefined) store(`${file}.map`, out.map);
    store(file, code);
    return { code, file };
  };
  const hook = function (m, filename) {
    m._compile(compile(fs.readFileSync(filename, 'utf8'), filename).code, filename);
  };
  hook.apfRegister = true;
  Module._extensions['.ts'] = hook;
  if (!wantMaps && process.env.APF_PACK !== '0' && ownProcess()) {
    require('./module-pack.js').installPack({
      cacheDir: CACHE,
      salt,
      store,
      compileTs: (filename) => compile(fs.readFileSync(filename, 'utf8'), filename).code,
      root: ROOT,
    });
  }
}

/**
 * zod builds its namespace with every message locale it ships (over sixty modules, a quarter of all
 * the modules `apf run` loads); apf only ever uses English, which zod loads on its own. The locales
 * index is served as a stand-in whose entries load their module on first use: the same names and
 * values, read from the index's own text, without loading sixty files at every start.
 */
function lazyZodLocales() {
  let index;
  try {
    index = require.resolve('zod/v4/locales/index.cjs', { paths: [ROOT] });
  } catch {
    return; // another zod layout: load it as it is
  }
  let text;
  try {
    text = fs.readFileSync(index, 'utf8');
  } catch {
    return;
  }
  const entries = [];
  const re = /var (\w+) = require\("\.\/([\w.-]+\.cjs)"\);\s*Object\.defineProperty\(exports, "(\w+)", \{ enumerable: true, get: function \(\) \{ return __importDefault\(\1\)\.default; \} \}\);/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) entries.push({ name: m[3], file: path.join(path.dirname(index), m[2]) });
  // Only when every locale of the index is understood; otherwise zod is loaded untouched.
  if (entries.length === 0 || entries.length !== (text.match(/require\(/g) || []).length) return;
  const stand = { __esModule: true };
  for (const e of entries) {
    Object.defineProperty(stand, e.name, {
      enumerable: true,
      get() {
        const mod = require(e.file);
        return mod && mod.__esModule ? mod.default : mod;
      },
    });
  }
  const m = new Module(index, null);
  m.filename = index;
  m.paths = Module._nodeModulePaths(path.dirname(index));
  m.exports = stand;
  m.loaded = true;
  Module._cache[index] = m;
}

install();
lazyZodLocales();
