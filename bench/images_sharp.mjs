// The sharp (libvips) half of bench/images.py: every photo of a folder resized to the
// responsive widths and encoded the way a sharp user would, one format at a time, timed.
//
//   node bench/images_sharp.mjs --node-dir bench/out/node --src DIR --out DIR [--runs 3]
//
// Prints one JSON object on stdout: versions, the median wall and CPU time of each format's
// pass over the whole set, and every variant written (path relative to --out, size in bytes).
// bench/images.py installs sharp into --node-dir and reads that JSON; run it by hand only
// to look at one half of the benchmark.

import { createRequire } from "node:module";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";

function options(argv) {
  const o = {
    runs: 3,
    widths: [320, 640, 960, 1280, 1920],
    formats: ["webp", "avif", "original"],
    webpQuality: 75,
    avifQuality: 50,
    jpegQuality: 80,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${key} needs a value`);
    switch (key) {
      case "--node-dir": o.nodeDir = value; break;
      case "--src": o.src = value; break;
      case "--out": o.out = value; break;
      case "--runs": o.runs = Number(value); break;
      case "--widths": o.widths = value.split(",").map(Number); break;
      case "--formats": o.formats = value.split(","); break;
      case "--webp-quality": o.webpQuality = Number(value); break;
      case "--avif-quality": o.avifQuality = Number(value); break;
      case "--jpeg-quality": o.jpegQuality = Number(value); break;
      default: throw new Error(`unknown option ${key}`);
    }
  }
  for (const need of ["nodeDir", "src", "out"]) {
    if (!o[need]) throw new Error(`missing --${need.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`);
  }
  return o;
}

const MIME = { webp: "image/webp", avif: "image/avif", jpeg: "image/jpeg", png: "image/png" };

// The widths below the photo's own width, then its own width (as perf-build does).
function widthsFor(own, widths) {
  return [...widths.filter((w) => w < own), own];
}

// The encoder call of one format. "original" re-encodes in the photo's own format: mozjpeg
// for a JPEG (sharp's `mozjpeg: true` preset), sharp's default lossless PNG for a PNG.
function encode(pipeline, format, source, o) {
  switch (format) {
    case "webp": return [pipeline.webp({ quality: o.webpQuality }), "webp"];
    case "avif": return [pipeline.avif({ quality: o.avifQuality }), "avif"];
    case "original":
      if (source.format === "jpeg") return [pipeline.jpeg({ quality: o.jpegQuality, mozjpeg: true }), "jpeg"];
      if (source.format === "png") return [pipeline.png(), "png"];
      if (source.format === "webp") return [pipeline.webp({ quality: o.webpQuality }), "webp"];
      return [null, null]; // GIF and others: no recompressed original
    default: throw new Error(`unknown format ${format}`);
  }
}

// One pass: every variant of one format for every photo, all started at once so sharp's
// thread pool keeps every core busy, as a build script using sharp would.
async function pass(sharp, sources, format, o) {
  const jobs = [];
  for (const source of sources) {
    for (const width of widthsFor(source.width, o.widths)) {
      const [pipeline, ext] = encode(
        // .rotate() with no angle applies the EXIF orientation, as perf-build does.
        sharp(source.file).rotate().resize({ width }),
        format, source, o,
      );
      if (!pipeline) continue;
      const rel = path.join(source.stem, `${width}.${ext}`);
      jobs.push(
        pipeline.toFile(path.join(o.out, rel)).then((info) => ({
          source: source.name, format: MIME[ext], width: info.width, height: info.height,
          file: rel, bytes: info.size,
        })),
      );
    }
  }
  return Promise.all(jobs);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const o = options(process.argv.slice(2));
  const require = createRequire(path.resolve(o.nodeDir, "package.json"));
  const sharp = require("sharp");
  // Every run decodes from disk: no libvips operation cache carried from one run to the next.
  sharp.cache(false);

  const names = (await readdir(o.src)).filter((n) => /\.(jpe?g|png|webp|gif)$/i.test(n)).sort();
  const sources = [];
  for (const name of names) {
    const file = path.join(o.src, name);
    const meta = await sharp(file).metadata();
    // The displayed width: EXIF orientations 5 to 8 swap width and height.
    const width = (meta.orientation ?? 1) >= 5 ? meta.height : meta.width;
    sources.push({ name, file, stem: name.replace(/\.[^.]+$/, ""), format: meta.format, width });
  }

  await rm(o.out, { recursive: true, force: true });
  for (const s of sources) await mkdir(path.join(o.out, s.stem), { recursive: true });

  const timings = {};
  let variants = [];
  for (const format of o.formats) {
    const runs = [];
    const cpu = [];
    let written = [];
    for (let i = 0; i < o.runs; i++) {
      const t0 = performance.now();
      // CPU time of the whole process, every libuv and libvips thread included: steadier
      // than wall time when other work shares the cores.
      const c0 = process.cpuUsage();
      written = await pass(sharp, sources, format, o);
      const c = process.cpuUsage(c0);
      runs.push((performance.now() - t0) / 1000);
      cpu.push((c.user + c.system) / 1e6);
    }
    timings[format] = { runs, median: median(runs), cpu, cpu_median: median(cpu) };
    variants = variants.concat(written);
  }
  for (const v of variants) v.bytes = (await stat(path.join(o.out, v.file))).size;

  process.stdout.write(JSON.stringify({
    tool: `sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}, libwebp ${sharp.versions.webp}, ` +
      `libaom ${sharp.versions.aom}, mozjpeg)`,
    concurrency: sharp.concurrency(),
    threadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    cores: os.availableParallelism(),
    settings: {
      webp: `quality ${o.webpQuality}, effort 4 (default)`,
      avif: `quality ${o.avifQuality}, effort 4 (default), 4:4:4 (default)`,
      jpeg: `quality ${o.jpegQuality}, mozjpeg preset`,
      png: "defaults (lossless, compressionLevel 6)",
      resize: "lanczos3 (default), EXIF-oriented",
    },
    timings,
    variants,
  }, null, 1) + "\n");
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  process.exit(1);
});
