// Import direction, checked in CI (`npm run lint:deps`): the tree's layers as
// docs/ARCHITECTURE.md draws them. Pure cores import no I/O; engines import
// nothing of the server; the SDK imports only the protocol; no framework or
// OpenTelemetry package reaches the server or the client entry points.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'protocol-is-the-bottom',
      comment: 'src/protocol (wire types, schemas, the catalogue) imports only itself and zod.',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { pathNot: ['^src/protocol/', '^node_modules/zod/'] },
    },
    {
      name: 'pure-cores-import-no-io',
      comment: 'src/core (merge, positions, sequencer) and src/filters are pure: the protocol and each other, nothing else (no node:*, no package).',
      severity: 'error',
      from: { path: '^src/(core|filters)/' },
      to: { pathNot: ['^src/(core|filters|protocol)/'] },
    },
    {
      name: 'engines-know-no-server',
      comment: 'src/engine (the seam and its engines) never imports the server, the ingest, the CLI or the console.',
      severity: 'error',
      from: { path: '^src/engine/' },
      to: { path: '^src/(server|ingest|cli|dashboard|demo|detect)/' },
    },
    {
      name: 'sdk-imports-only-the-protocol',
      comment: 'src/client (the TS SDK, also bundled for browsers) imports itself and src/protocol only.',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { pathNot: ['^src/(client|protocol)/', '^node_modules/zod/'] },
    },
    {
      name: 'no-framework-in-the-product',
      comment: 'Agent frameworks and OpenTelemetry packages are optional peers or dev dependencies: tests and adapters only.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^node_modules/(@opentelemetry|ai|@ai-sdk|@openai|@langchain)/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle hides which module is the lower layer.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-dev-dependencies',
      comment: 'Product code must not need a dev dependency at run time (type-only imports are fine).',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/dashboard/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts'] },
  },
};
