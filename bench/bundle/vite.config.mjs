// Vite's default production build of the entries bench/bundle*.py name, for the bundling
// benchmarks (issue 11). Loaded with `vite build --configLoader native`, so nothing is
// written beside this file. Everything comes from the environment:
//   BENCH_VITE_ROOT   the folder the entries live in (Vite's root; manifest keys are relative to it)
//   BENCH_VITE_OUT    the output folder (emptied)
//   BENCH_VITE_INPUT  a JSON object, chunk name -> absolute path of the entry module
//   BENCH_VITE_ALIAS  optional: the file that `../_perf/code-splitter.js` names (perf-build's
//                     built-in CodeSplitter), so Vite bundles the same code we do
//   BENCH_VITE_BASE   optional: the public base of the output (default /)
//   BENCH_VITE_PRESERVE  optional: rolldown's preserveEntrySignatures. Vite's default for an
//                     app build is false, which drops an entry's exports that no other chunk
//                     imports: a feature module (loaded by CodeSplitter.loadFeature, which uses
//                     its exports) comes out empty. "exports-only" keeps them.
// Only these are set: modulePreload, minify (oxc), target and chunking are Vite's defaults.

const env = process.env;
const alias = env.BENCH_VITE_ALIAS
  ? [{ find: /^(\.\.\/)+_perf\/code-splitter\.js$/, replacement: env.BENCH_VITE_ALIAS }]
  : [];

export default {
  root: env.BENCH_VITE_ROOT,
  base: env.BENCH_VITE_BASE || "/",
  publicDir: false,
  logLevel: "warn",
  clearScreen: false,
  resolve: { alias },
  build: {
    outDir: env.BENCH_VITE_OUT,
    emptyOutDir: true,
    manifest: true,
    rollupOptions: {
      input: JSON.parse(env.BENCH_VITE_INPUT),
      ...(env.BENCH_VITE_PRESERVE ? { preserveEntrySignatures: env.BENCH_VITE_PRESERVE } : {}),
    },
  },
};
