#!/usr/bin/env python3
"""Responsive images: perf-build's image pipeline against sharp (libvips) on a set of
public photographs, in the same run: bytes per format, visual quality (SSIM), wall time,
and the warm rebuild against the cold one.

    python3 bench/images.py                  # prints a Markdown table, writes bench/out/images.md
    python3 bench/images.py --runs 1 --photos 3          # a quick look
    python3 bench/images.py --ours pillow    # proves the script without perf-build's CLI

Photos: the twelve photographs of Debian's `mate-backgrounds` (`nature/`, GPL-2+, 1280 to
2560 px wide), fetched with `apt-get download` into bench/out/photos; two of them are
stored as PNG there so that both recompressors run. Nothing of it is committed.

Peer: sharp from npm (with its own libvips), installed into bench/out/node; the Node half
is bench/images_sharp.mjs. Each photo is resized to the widths below its own width plus
its own width, lanczos3 (sharp's default), and encoded as WebP q75, AVIF q50 (sharp's
defaults otherwise) and its own format (mozjpeg q80, or sharp's default lossless PNG).

Ours: the perf-build CLI (`target/debug/perf-build` unless PERF_BUILD_CLI names another;
the image crates are optimised in every profile), cold (no dist folder, so no cache) and
then warm (the same input again). Its AVIF share of the time is the full cold run minus a
cold run with PERF_BUILD_IMAGES_AVIF=never. Rounds are interleaved (sharp, ours, sharp,
ours, ...) and both wall and CPU time (user + system, every thread) are reported: CPU time
stays meaningful when other work shares the two cores.

Quality: SSIM (scikit-image `structural_similarity`, 7x7 window, on luma) of every
variant against the source resized with Pillow's Lanczos to the variant's own size; both
tools' variants are compared with the same reference.

Python packages (Pillow, NumPy, scikit-image) go into a venv under bench/out, which this
script creates and then re-runs itself in.
"""

import argparse
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from common import OUT, ROOT, TARGET, fresh, run  # noqa: E402

VENV = os.path.join(OUT, "venv")
PY_PACKAGES = ["pillow==13.0.0", "scikit-image==0.26.0", "numpy==2.4.6"]
NODE_DIR = os.path.join(OUT, "node")
SHARP = "sharp@0.35.5"
PHOTOS = os.path.join(OUT, "photos")
STATIC = os.path.join(OUT, "photos-static")
DEBS = os.path.join(OUT, "debs")
PHOTO_PACKAGE = "mate-backgrounds"
# Stored as lossless PNG in the set, so that the PNG recompressors are measured too.
AS_PNG = {"RainDrops.jpg", "Storm.jpg"}
WIDTHS = [320, 640, 960, 1280, 1920]
FORMATS = ["image/avif", "image/webp", "image/jpeg", "image/png"]
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".gif")


# --- setup ------------------------------------------------------------------------


def in_venv():
    """Re-runs this script inside bench/out/venv, creating it first if needed."""
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    stamp = os.path.join(VENV, "packages.txt")
    want = "\n".join(PY_PACKAGES)
    if not os.path.exists(stamp) or open(stamp).read() != want:
        run([sys.executable, "-m", "venv", VENV])
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *PY_PACKAGES])
        with open(stamp, "w") as f:
            f.write(want)
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])


def install_sharp():
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "sharp", "package.json")):
        os.makedirs(NODE_DIR, exist_ok=True)
        run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", NODE_DIR, SHARP])


def fetch_photos():
    """The photo set into bench/out/photos (once): the `nature/` photographs of the
    Debian package, two of them converted to PNG, and a SOURCE.md saying where they
    came from."""
    from PIL import Image

    stamp = os.path.join(PHOTOS, "SOURCE.md")
    if os.path.exists(stamp):
        return
    os.makedirs(DEBS, exist_ok=True)
    debs = glob.glob(os.path.join(DEBS, f"{PHOTO_PACKAGE}_*.deb"))
    if not debs:
        if subprocess.run(["apt-get", "download", PHOTO_PACKAGE], cwd=DEBS).returncode != 0:
            run(["apt-get", "update", "-qq"])
            run(["apt-get", "download", PHOTO_PACKAGE], cwd=DEBS)
        debs = glob.glob(os.path.join(DEBS, f"{PHOTO_PACKAGE}_*.deb"))
    deb = debs[0]
    version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True, check=True).stdout.strip()
    tree = fresh(os.path.join(DEBS, PHOTO_PACKAGE))
    run(["dpkg-deb", "-x", deb, tree])
    nature = os.path.join(tree, "usr", "share", "backgrounds", "mate", "nature")
    fresh(PHOTOS)
    names = []
    for src in sorted(glob.glob(os.path.join(nature, "*.jpg"))):
        name = os.path.basename(src)
        if name in AS_PNG:
            name = name[:-4] + ".png"
            Image.open(src).convert("RGB").save(os.path.join(PHOTOS, name))
        else:
            shutil.copy(src, os.path.join(PHOTOS, name))
        names.append(name)
    shutil.copy(
        os.path.join(tree, "usr", "share", "doc", PHOTO_PACKAGE, "copyright"),
        os.path.join(PHOTOS, "copyright"),
    )
    with open(stamp, "w") as f:
        f.write(
            f"# Benchmark photographs\n\nFrom the Debian package `{PHOTO_PACKAGE}` {version}, "
            f"`/usr/share/backgrounds/mate/nature/`, fetched by bench/images.py with "
            f"`apt-get download {PHOTO_PACKAGE}`. Licence: GPL-2+ (authors and years in "
            f"`copyright`, the package's own file). {', '.join(sorted(AS_PNG))} are stored "
            f"here as lossless PNG (same pixels as the JPEG).\n\n"
            + "".join(f"- {n}\n" for n in names)
        )


def photo_set(limit):
    """The static folder both tools read: the photos only (the first `limit`, if given)."""
    names = sorted(n for n in os.listdir(PHOTOS) if n.lower().endswith(IMAGE_EXT))
    if limit:
        names = names[:limit]
    fresh(STATIC)
    for n in names:
        shutil.copy(os.path.join(PHOTOS, n), os.path.join(STATIC, n))
    return names


def package_version():
    deb = glob.glob(os.path.join(DEBS, f"{PHOTO_PACKAGE}_*.deb"))
    return os.path.basename(deb[0]).split("_")[1] if deb else "?"


# --- the two tools ----------------------------------------------------------------


def run_sharp(runs, widths):
    out = os.path.join(OUT, "sharp")
    cmd = [
        "node", os.path.join(BENCH, "images_sharp.mjs"),
        "--node-dir", NODE_DIR, "--src", STATIC, "--out", out,
        "--runs", str(runs), "--widths", ",".join(map(str, widths)),
    ]
    print("+", " ".join(cmd), file=sys.stderr)
    data = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
    variants = [dict(v, path=os.path.join(out, v["file"])) for v in data["variants"]]
    return data, variants


def ours_command(kind):
    if kind == "pillow":
        return [sys.executable, os.path.abspath(__file__), "--pillow-build"]
    cli = os.environ.get("PERF_BUILD_CLI") or os.path.join(TARGET, "debug", "perf-build")
    if not os.path.exists(cli):
        sys.exit(
            f"no perf-build CLI at {cli}: build it with "
            "`cargo build -p perf-build --bin perf-build`, or name one with PERF_BUILD_CLI"
        )
    return [cli]


def build_once(cmd, dist, env=None, cold=True):
    """One build: (wall seconds, CPU seconds of the process and its threads)."""
    if cold:
        shutil.rmtree(dist, ignore_errors=True)  # its .perf-cache goes with it
    full = cmd + ["build", "--static-dir", STATIC, "--dist-dir", dist, "--quiet", "--no-precompress"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(full, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def medians(samples):
    """(median wall, median CPU) of (wall, CPU) samples."""
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def measure(kind, runs):
    """Both tools, rounds interleaved (so a load that comes and goes touches both): each
    round runs sharp's three passes, our cold build, and our cold build without AVIF;
    then our warm rebuilds. Returns sharp's data and variants, our times and variants."""
    cmd = ours_command(kind)
    dist = os.path.join(OUT, "ours")
    noavif_dist = os.path.join(OUT, "ours-noavif")
    rounds, cold, noavif = [], [], []
    for i in range(runs):
        print(f"round {i + 1} of {runs}", file=sys.stderr)
        sharp, theirs = run_sharp(1, WIDTHS)
        rounds.append(sharp["timings"])
        print("+", " ".join(cmd), "build ... (cold, then cold without AVIF)", file=sys.stderr)
        cold.append(build_once(cmd, dist))
        noavif.append(build_once(cmd, noavif_dist, env={"PERF_BUILD_IMAGES_AVIF": "never"}))
    ours = read_manifest(dist)
    warm = [build_once(cmd, dist, cold=False) for _ in range(runs)]
    sharp["timings"] = {
        f: {
            "runs": [r[f]["median"] for r in rounds],
            "cpu": [r[f]["cpu_median"] for r in rounds],
            "median": statistics.median(r[f]["median"] for r in rounds),
            "cpu_median": statistics.median(r[f]["cpu_median"] for r in rounds),
        }
        for f in rounds[0]
    }
    times = {"cold": medians(cold), "warm": medians(warm), "noavif": medians(noavif),
             "samples": {"cold": cold, "warm": warm, "noavif": noavif}}
    if any(v["format"] == "image/avif" for v in read_manifest(noavif_dist)):
        times["noavif"] = None  # the variable is not honoured: no AVIF share to report
    return sharp, theirs, times, ours


def norm_format(f):
    f = f.lower()
    if "/" not in f:
        f = "image/" + ("jpeg" if f == "jpg" else f)
    return f


def read_manifest(dist):
    """Every image variant in dist/manifest.json, as {source, format, width, height,
    path, bytes}; tolerant of small changes in field names."""
    with open(os.path.join(dist, "manifest.json")) as f:
        manifest = json.load(f)
    if isinstance(manifest, dict) and isinstance(manifest.get("assets"), (dict, list)):
        manifest = manifest["assets"]
    entries = manifest.items() if isinstance(manifest, dict) else ((e.get("path"), e) for e in manifest)
    out = []
    for logical, entry in entries:
        image = entry.get("image") if isinstance(entry, dict) else None
        if not image:
            continue
        for v in image.get("variants", []):
            rel = v.get("file") or v.get("path")
            path = os.path.join(dist, rel.lstrip("/"))
            out.append({
                "source": os.path.basename(logical),
                "format": norm_format(v.get("format") or v.get("content_type")),
                "width": v["width"],
                "height": v["height"],
                "path": path,
                "bytes": v.get("bytes") if isinstance(v.get("bytes"), int) else os.path.getsize(path),
            })
    if not out:
        sys.exit(f"{dist}/manifest.json lists no image variants: is the image pipeline in this CLI?")
    return out


def pillow_build(argv):
    """A stand-in for the perf-build CLI (same arguments, same manifest shape) made of
    Pillow's encoders: WebP q75 method 4, AVIF q50 speed 6, JPEG q80, PNG optimised."""
    from PIL import Image, ImageOps

    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["build"])
    ap.add_argument("--static-dir")
    ap.add_argument("--dist-dir")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-precompress", action="store_true")
    a = ap.parse_args(argv)
    avif = os.environ.get("PERF_BUILD_IMAGES_AVIF", "always") != "never"
    os.makedirs(a.dist_dir, exist_ok=True)
    manifest = {}
    for name in sorted(os.listdir(a.static_dir)):
        if not name.lower().endswith(IMAGE_EXT):
            continue
        src = ImageOps.exif_transpose(Image.open(os.path.join(a.static_dir, name))).convert("RGB")
        own = "png" if name.lower().endswith(".png") else "jpeg"
        formats = (["avif"] if avif else []) + ["webp", own]
        variants = []
        for w in [x for x in WIDTHS if x < src.width] + [src.width]:
            h = round(src.height * w / src.width)
            im = src if w == src.width else src.resize((w, h), Image.LANCZOS)
            for fmt in formats:
                rel = f"{os.path.splitext(name)[0]}-{w}.{fmt}"
                q = lambda name, d: int(float(os.environ.get(f"PERF_BUILD_IMAGES_{name}", d)))  # noqa: E731
                opts = {"avif": {"quality": q("AVIF_QUALITY", 50), "speed": q("AVIF_SPEED", 6)},
                        "webp": {"quality": q("WEBP_QUALITY", 75), "method": 4},
                        "jpeg": {"quality": q("JPEG_QUALITY", 80), "optimize": True},
                        "png": {"optimize": True}}[fmt]
                im.save(os.path.join(a.dist_dir, rel), fmt.upper(), **opts)
                variants.append({"format": f"image/{fmt}", "width": w, "height": h, "file": rel,
                                 "bytes": os.path.getsize(os.path.join(a.dist_dir, rel))})
        manifest[name] = {"image": {"width": src.width, "height": src.height, "variants": variants}}
    with open(os.path.join(a.dist_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f)


# --- quality ------------------------------------------------------------------------


_sources = {}


def luma(im):
    from PIL import Image
    import numpy as np

    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB").convert("L"))


def ssim_of(job):
    """SSIM of one variant against its source resized to the variant's size."""
    from PIL import Image, ImageOps
    from skimage.metrics import structural_similarity

    source, path, w, h = job
    if source not in _sources:
        _sources.clear()  # jobs come sorted by source: keep one decoded source per worker
        _sources[source] = ImageOps.exif_transpose(Image.open(os.path.join(STATIC, source))).convert("RGB")
    src = _sources[source]
    ref = src if src.size == (w, h) else src.resize((w, h), Image.LANCZOS)
    var = Image.open(path)
    if var.size != (w, h):
        var = var.resize((w, h), Image.LANCZOS)
    return structural_similarity(luma(ref), luma(var), data_range=255)


def add_ssim(variants):
    from multiprocessing import Pool

    jobs = sorted({(v["source"], v["path"], v["width"], v["height"]) for v in variants})
    with Pool(os.cpu_count() or 2) as pool:
        scores = dict(zip(jobs, pool.map(ssim_of, jobs, chunksize=4)))
    for v in variants:
        v["ssim"] = scores[(v["source"], v["path"], v["width"], v["height"])]


# --- quality sweep -----------------------------------------------------------------

SWEEP_VARS = {
    "webp": ("image/webp", "PERF_BUILD_IMAGES_WEBP_QUALITY"),
    "avif": ("image/avif", "PERF_BUILD_IMAGES_AVIF_QUALITY"),
    "avif-speed": ("image/avif", "PERF_BUILD_IMAGES_AVIF_SPEED"),
    "jpeg": ("image/jpeg", "PERF_BUILD_IMAGES_JPEG_QUALITY"),
}


def sweep(kind, specs, theirs):
    """Our bytes and SSIM of one format at other settings (one cold build each, AVIF
    off unless AVIF is swept), against the same sharp variants."""
    cmd = ours_command(kind)
    rows = []
    for spec in specs:
        name, values = spec.split("=", 1)
        fmt, var = SWEEP_VARS[name]
        for value in values.split(","):
            env = {var: value}
            if fmt != "image/avif":
                env["PERF_BUILD_IMAGES_AVIF"] = "never"
            dist = os.path.join(OUT, "sweep", f"{name}-{value}")
            print("+", f"{var}={value}", " ".join(cmd), "build ...", file=sys.stderr)
            seconds, _ = build_once(cmd, dist, env=env)
            mine = [v for v in read_manifest(dist) if v["format"] == fmt]
            pairs = compare(mine, [t for t in theirs if t["format"] == fmt]).get(fmt, [])
            add_ssim([o for o, _ in pairs])
            rows.append((f"{var}={value}", fmt, pairs, seconds))
    return rows


def sweep_table(rows):
    lines = ["| setting | format | pairs | ours bytes | sharp bytes | ours/sharp | SSIM ours | SSIM sharp | build |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for setting, fmt, pairs, seconds in rows:
        if not pairs:
            lines.append(f"| `{setting}` | {fmt} | 0 | - | - | - | - | - | {seconds:.1f} s |")
            continue
        ob = sum(o["bytes"] for o, _ in pairs)
        sb = sum(t["bytes"] for _, t in pairs)
        lines.append(
            f"| `{setting}` | {fmt} | {len(pairs)} | {fmt_bytes(ob)} | {fmt_bytes(sb)} | {ob / sb:.3f}x | "
            f"{statistics.mean(o['ssim'] for o, _ in pairs):.4f} | "
            f"{statistics.mean(t['ssim'] for _, t in pairs):.4f} | {seconds:.1f} s |")
    return "\n".join(lines) + "\n"


# --- report -------------------------------------------------------------------------


def compare(ours, theirs):
    """Per format: the variants both tools made (same source, format and width)."""
    key = lambda v: (v["source"], v["format"], v["width"])  # noqa: E731
    mine = {key(v): v for v in ours}
    rows = {}
    for t in theirs:
        o = mine.get(key(t))
        if o:
            rows.setdefault(t["format"], []).append((o, t))
    return rows


def fmt_bytes(n):
    return f"{n:,}"


def table(args, names, sharp, ours_times, pairs, ours_count, sharp_count, ssim_tool):
    ts = sharp["timings"]
    lines = []
    say = lines.append
    say(f"Photos: {len(names)} from Debian `{PHOTO_PACKAGE}` {package_version()} "
        f"({sum(n.endswith('.png') for n in names)} stored as PNG); widths "
        f"{', '.join(map(str, WIDTHS))} below each photo's width, plus its own width. "
        f"Peer: {sharp['tool']}, libvips concurrency {sharp['concurrency']}, "
        f"{sharp['threadpool']} libuv threads, {sharp['cores']} cores.")
    say("")
    say(f"| format | variants compared | ours bytes | sharp bytes | ours/sharp | SSIM ours | SSIM sharp |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for f in FORMATS:
        p = pairs.get(f)
        if not p:
            continue
        ob = sum(o["bytes"] for o, _ in p)
        sb = sum(t["bytes"] for _, t in p)
        os_ = statistics.mean(o["ssim"] for o, _ in p)
        ss = statistics.mean(t["ssim"] for _, t in p)
        say(f"| {f} | {len(p)} | {fmt_bytes(ob)} | {fmt_bytes(sb)} | {ob / sb:.3f}x | {os_:.4f} | {ss:.4f} |")
    say("")
    say(f"| work (median of {args.runs} interleaved rounds) | ours wall | sharp wall | ratio | ours CPU | sharp CPU | ratio |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    (cw, cc), (ww, wc) = ours_times["cold"], ours_times["warm"]
    sharp_of = lambda key, *fs: sum(ts[f][key] for f in fs if f in ts)  # noqa: E731

    def row(label, ow, oc, sw, sc):
        say(f"| {label} | {ow:.2f} s | {sw:.2f} s | {ow / sw:.2f}x | {oc:.2f} s | {sc:.2f} s | {oc / sc:.2f}x |")

    if ours_times["noavif"] is not None:
        nw, nc = ours_times["noavif"]
        row("AVIF variants (ours: cold minus cold without AVIF)", cw - nw, cc - nc,
            sharp_of("median", "avif"), sharp_of("cpu_median", "avif"))
        row("WebP + recompressed originals (ours: cold, PERF_BUILD_IMAGES_AVIF=never)", nw, nc,
            sharp_of("median", "webp", "original"), sharp_of("cpu_median", "webp", "original"))
    row("everything, cold (ours: no dist, no cache; sharp: its three passes)", cw, cc,
        sharp_of("median", "avif", "webp", "original"), sharp_of("cpu_median", "avif", "webp", "original"))
    say(f"| warm rebuild, unchanged input | {ww:.2f} s | - | {100 * ww / cw:.1f}% of cold | {wc:.2f} s | - | {100 * wc / cc:.1f}% of cold |")
    say("")
    say(f"Quality: {ssim_tool}. Variants made: ours {ours_count}, sharp {sharp_count}; only "
        f"the pairs both made (same photo, format and width) are compared. Ours: "
        f"{'Pillow stand-in (--ours pillow)' if args.ours == 'pillow' else 'perf-build CLI'} "
        f"with `--no-precompress --quiet`.")
    say("")
    say(f"Reproduce: `python3 bench/images.py{' --ours pillow' if args.ours == 'pillow' else ''}"
        f"{f' --runs {args.runs}' if args.runs != 3 else ''}"
        f"{f' --photos {args.photos}' if args.photos else ''}"
        f"{''.join(f' --sweep {x}' for x in args.sweep)}` "
        f"(after `cargo build -p perf-build --bin perf-build`).")
    return "\n".join(lines) + "\n"


def main():
    if sys.argv[1:2] == ["--pillow-build"]:
        return pillow_build(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each tool (median)")
    ap.add_argument("--photos", type=int, default=0, help="use only the first N photos")
    ap.add_argument("--ours", choices=["cli", "pillow"], default="cli",
                    help="pillow: a Pillow stand-in for the CLI, to test this script")
    ap.add_argument("--sweep", action="append", default=[], metavar="FORMAT=Q1,Q2",
                    help="also build ours at these settings and compare that format alone; "
                    f"FORMAT is one of {', '.join(SWEEP_VARS)} (e.g. --sweep webp=70,80)")
    ap.add_argument("--sweep-only", action="store_true",
                    help="only the sweeps, against the sharp variants of the last full run "
                    "(bench/out/images.json)")
    args = ap.parse_args()
    in_venv()
    import PIL
    import skimage

    install_sharp()
    fetch_photos()
    if args.sweep_only:
        with open(os.path.join(OUT, "images.json")) as f:
            theirs = json.load(f)["theirs"]
        md = "Other settings of ours (one cold build each; sharp's variants from the last full run):\n\n"
        md += sweep_table(sweep(args.ours, args.sweep, theirs))
        with open(os.path.join(OUT, "images-sweep.md"), "w") as f:
            f.write(md)
        print(md)
        return
    names = photo_set(args.photos)
    ours_command(args.ours)  # fails early, before the long sharp runs, if there is no CLI
    sharp, theirs, ours_times, ours = measure(args.ours, args.runs)
    print("SSIM of every variant ...", file=sys.stderr)
    add_ssim(ours + theirs)
    pairs = compare(ours, theirs)
    ssim_tool = (f"SSIM, scikit-image {skimage.__version__} `structural_similarity` (7x7 window, "
                 f"data_range 255) on luma (Pillow {PIL.__version__} `L`), against the EXIF-oriented "
                 f"source resized with Pillow's Lanczos to the variant's size")
    md = table(args, names, sharp, ours_times, pairs, len(ours), len(theirs), ssim_tool)
    if args.sweep:
        md += "\nOther settings of ours (one cold build each; sharp unchanged):\n\n"
        md += sweep_table(sweep(args.ours, args.sweep, theirs))
    with open(os.path.join(OUT, "images.md"), "w") as f:
        f.write(md)
    with open(os.path.join(OUT, "images.json"), "w") as f:
        json.dump({"sharp": sharp, "ours_times": ours_times,
                   "ours": ours, "theirs": theirs}, f, indent=1)
    print(md)


if __name__ == "__main__":
    main()
