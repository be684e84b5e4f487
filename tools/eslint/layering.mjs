// ESLint rule enforcing the project's layers (see docs/architecture.md).
//
// A file's layer is the first folder of its path under the repository root. Each layer lists the
// project layers and the npm packages it may import. The rule resolves every relative import
// (import/export-from, require(), dynamic import()) to the folder it lands in, so `../host/x`,
// `../../guest` and `../sim/../host/y` are all judged by where they really point.
import path from 'node:path';

/** Which project layers each layer may import, and which packages (exact names or prefixes ending in '/'). */
export const LAYERS = {
  'shared-abi': { layers: [], packages: [] },
  sim: { layers: ['shared-abi'], packages: ['eventemitter3'] },
  host: { layers: ['shared-abi', 'sim'], packages: [] },
  guest: { layers: ['shared-abi', 'sim'], packages: [] },
};

const PROJECT_LAYERS = new Set(['shared-abi', 'sim', 'host', 'guest', 'harness', 'scenarios', 'test', 'bench', 'tools']);

function layerOf(root, file) {
  const rel = path.relative(root, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return rel.split(path.sep)[0];
}

export const layeringRule = {
  meta: {
    type: 'problem',
    docs: { description: 'shared-abi imports nothing; sim imports shared-abi; host and guest import shared-abi and sim, never each other' },
    schema: [{ type: 'object', properties: { root: { type: 'string' } }, additionalProperties: false }],
    messages: {
      layer: "Bad layering: {{from}}/ may not import {{to}}/ ('{{spec}}'). {{from}}/ may import: {{allowed}}.",
      pkg: "Bad layering: {{from}}/ may not import the package '{{spec}}'. Allowed packages: {{allowed}}.",
    },
  },
  create(context) {
    const root = context.options[0]?.root ?? context.cwd;
    const file = context.filename;
    const from = layerOf(root, file);
    const policy = from === undefined ? undefined : LAYERS[from];
    if (!policy) return {};
    function check(node, spec) {
      if (typeof spec !== 'string') return;
      if (spec.startsWith('.')) {
        const target = layerOf(root, path.resolve(path.dirname(file), spec));
        if (target === from || target === undefined) return;
        if (!PROJECT_LAYERS.has(target) || !policy.layers.includes(target)) {
          context.report({ node, messageId: 'layer', data: { from, to: target, spec, allowed: policy.layers.join(', ') || 'nothing of the project' } });
        }
        return;
      }
      const ok = policy.packages.some((p) => (p.endsWith('/') ? spec.startsWith(p) : spec === p || spec.startsWith(p + '/')));
      if (!ok) context.report({ node, messageId: 'pkg', data: { from, spec, allowed: policy.packages.join(', ') || 'none' } });
    }
    return {
      ImportDeclaration: (n) => check(n, n.source.value),
      ExportNamedDeclaration: (n) => n.source && check(n, n.source.value),
      ExportAllDeclaration: (n) => check(n, n.source.value),
      ImportExpression: (n) => n.source.type === 'Literal' && check(n, n.source.value),
      TSImportEqualsDeclaration: (n) => n.moduleReference.type === 'TSExternalModuleReference' && check(n, n.moduleReference.expression.value),
      CallExpression: (n) => {
        if (n.callee.type === 'Identifier' && n.callee.name === 'require' && n.arguments[0]?.type === 'Literal') check(n, n.arguments[0].value);
      },
    };
  },
};

export default { rules: { layering: layeringRule } };
