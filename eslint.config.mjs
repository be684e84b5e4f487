// ESLint flat config. `npm run lint` fails on any warning (--max-warnings 0).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import apf from './tools/eslint/layering.mjs';

const root = path.dirname(fileURLToPath(import.meta.url));

/** Ambient sources of time and randomness: the simulated layers get both from sim/ only. */
const NONDETERMINISM = 'Nondeterminism: sim/, host/ and guest/ take time and randomness from the simulation (sim/clock, sim/prng).';

export default tseslint.config(
  { ignores: ['node_modules/**', '.apf/**', 'dist/**', 'coverage/**', 'test/lint-fixtures/**', 'out/**', 'runs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly', Buffer: 'readonly', SharedArrayBuffer: 'readonly', Atomics: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', performance: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['shared-abi/**/*.ts', 'sim/**/*.ts', 'host/**/*.ts', 'guest/**/*.ts'],
    plugins: { apf },
    rules: {
      'apf/layering': ['error', { root }],
    },
  },
  {
    files: ['sim/**/*.ts', 'host/**/*.ts', 'guest/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error',
        { name: 'Date', message: NONDETERMINISM },
        { name: 'performance', message: NONDETERMINISM },
        { name: 'setTimeout', message: NONDETERMINISM },
        { name: 'setInterval', message: NONDETERMINISM },
        { name: 'setImmediate', message: NONDETERMINISM },
        { name: 'queueMicrotask', message: NONDETERMINISM },
        { name: 'process', message: NONDETERMINISM + ' (process.hrtime, process.env)' },
        { name: 'crypto', message: NONDETERMINISM },
      ],
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: NONDETERMINISM },
        { object: 'process', property: 'hrtime', message: NONDETERMINISM },
        { object: 'globalThis', property: 'Date', message: NONDETERMINISM },
        { object: 'globalThis', property: 'performance', message: NONDETERMINISM },
        { object: 'globalThis', property: 'setTimeout', message: NONDETERMINISM },
        { object: 'globalThis', property: 'setInterval', message: NONDETERMINISM },
        { object: 'globalThis', property: 'process', message: NONDETERMINISM },
      ],
    },
  },
);
