// The beasties half of bench/critical.py: runs beasties on each HTML file of a job list and
// times it inside node, so node's start-up and module loading are not counted.
//
//   node bench/critical_beasties.mjs JOBS.json RESULT.json
//
// JOBS.json: {"runs": N, "jobs": [{"name", "html", "out", "path", "publicPath"}]}. For each job
// a first run (its time is reported apart: it pays for V8 warming up on that input) writes the
// output HTML to `out` and keeps beasties' log; then N timed runs, each with a new Beasties
// instance (as a build would construct it), `process.hrtime.bigint()` around `process()`.
// Options: beasties' defaults, plus `path` and `publicPath` (where the stylesheets are on
// disk) and a `logger` that keeps the messages instead of printing them (no output to time).

import { readFileSync, writeFileSync } from 'node:fs';
import Beasties from 'beasties';

const [jobsFile, resultFile] = process.argv.slice(2);
const { runs, jobs } = JSON.parse(readFileSync(jobsFile, 'utf8'));
// beasties' package.json is not among its exports: read it from where node resolved the package.
const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.resolve('beasties')), 'utf8')).version;

function options(job, log) {
  const keep = (level) => (msg) => log.push(`${level}: ${String(msg).replace(/\u001b\[[0-9;]*m/g, '')}`);
  return {
    path: job.path,
    publicPath: job.publicPath,
    logger: { trace() {}, debug() {}, info: keep('info'), warn: keep('warn'), error: keep('error') },
  };
}

async function once(job, html, log) {
  const beasties = new Beasties(options(job, log));
  const t0 = process.hrtime.bigint();
  const out = await beasties.process(html);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { out, ms };
}

const results = [];
for (const job of jobs) {
  const html = readFileSync(job.html, 'utf8');
  const log = [];
  const first = await once(job, html, log);
  writeFileSync(job.out, first.out);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const { out, ms } = await once(job, html, []);
    if (out !== first.out) throw new Error(`${job.name}: beasties gave a different output on run ${i + 2}`);
    times.push(ms);
  }
  results.push({ name: job.name, first_ms: first.ms, times_ms: times, log });
}
writeFileSync(resultFile, JSON.stringify({ beasties: version, node: process.version, results }, null, 1));
