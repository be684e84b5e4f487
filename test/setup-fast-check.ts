/**
 * Every fast-check property in the suite runs with a fixed seed (CI must be reproducible);
 * FC_SEED=<n> explores other seeds locally. Properties that pass their own `seed` keep it.
 */
import fc from 'fast-check';

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20261121) });
