/** @jest-config-loader-options {"transpileOnly": true} */
import type { Config } from 'jest';

const config: Config = {
  testEnvironment: 'node',
  // Every core runs test files (Jest's default leaves one core to itself: on a 2-core machine the
  // whole suite ran on one worker). The fuzz tests' worker threads share the cores with them.
  maxWorkers: '100%',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)sx?$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  // nanoid >= 5 is ESM-only; Jest's CommonJS runtime on Node 20 cannot require(esm), so swc compiles it.
  transformIgnorePatterns: ['/node_modules/(?!nanoid/)'],
  setupFiles: ['<rootDir>/test/setup-fast-check.ts'],
  reporters: ['default', '<rootDir>/tools/jest/summary-reporter.js'],
  // The longest files first when Jest has no timings yet (a fresh CI checkout).
  testSequencer: '<rootDir>/tools/jest/sequencer.js',
  testPathIgnorePatterns: ['/node_modules/', '/test/lint-fixtures/'],
};

export default config;
