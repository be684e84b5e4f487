// A require hook for the harness's TypeScript: each .ts file is compiled with @swc/core's
// transformSync (types are stripped, not checked: `npm run typecheck` does that) and the output is
// cached under .apf/cache/, keyed by a hash of the source text, the file's path and the compiler
// settings. The sources are always what runs: an edited file has a new hash and is compiled again,
// there is no build step to forget. The output carries an inline source map, and source maps are
// enabled, so stack traces point at the TypeScript lines.
//
// Used by bin/apf, the npm scripts (node -r ./tools/register.js) and the fuzz worker threads.
// Without @swc/core (a devDependency) it falls back to ts-node in transpile-only mode.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const Module = require('node:module');

const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.APF_CACHE_DIR || path.join(ROOT, '.apf', 'cache');
const OPTIONS = {
  swcrc: false,
  configFile: false,
  sourceMaps: 'inline',
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
};

function install() {
  if (Module._extensions['.ts'] !== undefined && Module._extensions['.ts'].apfRegister === true) return;
  let swcVersion;
  try {
    swcVersion = require('@swc/core/package.json').version;
  } catch {
    require('ts-node').register({ transpileOnly: true, project: path.join(ROOT, 'tsconfig.json') });
    return;
  }
  if (typeof process.setSourceMapsEnabled === 'function') process.setSourceMapsEnabled(true);
  const salt = `${swcVersion}\0${JSON.stringify(OPTIONS)}\0`;
  let swc = null;
  let cacheOk = true;
  const compile = (source, filename) => {
    const key = crypto.createHash('sha1').update(salt).update(filename).update('\0').update(source).digest('hex');
    const file = path.join(CACHE, key.slice(0, 2), `${key}.js`);
    if (cacheOk) {
      try {
        return fs.readFileSync(file, 'utf8');
      } catch {
        // not cached yet
      }
    }
    if (swc === null) swc = require('@swc/core');
    const code = swc.transformSync(source, Object.assign({ filename }, OPTIONS)).code;
    if (cacheOk) {
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        // Write to a private name, then rename: concurrent processes never see half a file.
        const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
        fs.writeFileSync(tmp, code);
        fs.renameSync(tmp, file);
      } catch {
        cacheOk = false; // a read-only checkout: compile every time
      }
    }
    return code;
  };
  const hook = function (m, filename) {
    m._compile(compile(fs.readFileSync(filename, 'utf8'), filename), filename);
  };
  hook.apfRegister = true;
  Module._extensions['.ts'] = hook;
}

install();
