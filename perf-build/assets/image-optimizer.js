/* perf-suite ImageOptimizer: turns <img> tags whose image is in the build's image manifest
   into responsive AVIF/WebP <picture>s with their intrinsic size, lazy below the fold, with a
   blurred placeholder set through the CSSOM (a strict CSP forbids style attributes), and
   preloads critical images. Also marks server-rendered `perf-ph-*` images `perf-loaded` once
   they load. A classic script, or a module imported for its side effect:
     <script src=".." defer data-manifest="/static/images.json" data-optimize="img">
   data-manifest: the manifest's URL when no options.manifest is given (a module finds it as
   script[data-manifest]); data-optimize: a selector to optimize once the page is parsed, for
   pages whose CSP allows no inline script.
   globalThis.ImageOptimizer = { version, optimizeImages, preloadCriticalImages, clearPlaceholders } */
(() => {
  "use strict";
  const G = globalThis;
  // Loaded both ways on one page: the first copy owns the listeners.
  if (G.ImageOptimizer || typeof document === "undefined") return;
  const doc = document;
  const tag = doc.currentScript;
  const DATA = "data-perf-"; // + "srcset" / "src": URLs held for the IntersectionObserver
  const DONE = DATA + "optimized";
  const BLUR = DATA + "blur";
  const PH_CLASS = /(^|\s)perf-ph-/;
  const MARGIN = 200;
  const MODERN = ["image/avif", "image/webp"];
  const ORIGINAL = ["image/jpeg", "image/png"];
  const MANIFEST = "data-manifest";
  const PARSED = "DOMContentLoaded";
  const manifests = new Map(); // absolute URL -> parsed manifest, or the Promise of it
  const indexes = new WeakMap(); // manifest -> Map(origin + pathname -> logical path)
  let observer;

  const warn = (e) => {
    console.warn("ImageOptimizer:", (e && e.message) || e);
    return 0;
  };
  const script = () => (tag && tag.hasAttribute(MANIFEST) ? tag : doc.querySelector(`script[${MANIFEST}]`));

  const checked = (m) => {
    if (m && m.images && typeof m.images === "object") return m;
    throw Error("not an image manifest");
  };
  function load(given) {
    const own = given == null && script();
    const m = own ? own.getAttribute(MANIFEST) : given;
    if (!m) throw Error(`no manifest: set options.manifest or ${MANIFEST}`);
    if (typeof m === "object") return checked(m);
    const url = new URL(m, doc.baseURI).href;
    let got = manifests.get(url);
    if (!got) {
      got = fetch(url, { credentials: "same-origin" })
        .then((r) => {
          if (!r.ok) throw Error(`${url}: HTTP ${r.status}`);
          return r.json();
        })
        .then((j) => {
          manifests.set(url, checked(j));
          return j;
        })
        .catch((e) => {
          manifests.delete(url); // a later call tries again
          throw e;
        });
      manifests.set(url, got);
    }
    return got;
  }

  // Runs work(manifest) at once when the manifest is in hand (and the page parsed, if needed):
  // an image inserted just before the call is then upgraded before its first fetch starts.
  function withManifest(given, needsDom, work) {
    try {
      const m = load(given);
      const parsing = needsDom && doc.readyState === "loading";
      if (!parsing && !(m instanceof Promise)) return Promise.resolve(work(m));
      const dom = parsing && new Promise((r) => doc.addEventListener(PARSED, r, { once: true }));
      return Promise.all([m, dom]).then(([m]) => work(m)).catch(warn);
    } catch (e) {
      return Promise.resolve(warn(e));
    }
  }

  const at = (u, base) => {
    try {
      const x = new URL(u, base);
      return x.origin + x.pathname;
    } catch {
      return "";
    }
  };
  // The usable [width, url] pairs of one format.
  const valid = (list) =>
    Array.isArray(list) ? list.filter((c) => Array.isArray(c) && c[0] > 0 && typeof c[1] === "string") : [];
  const formats = (e) => Object.entries((e && e.sources) || {});
  // Every URL of an entry (logical, hashed, each variant) names it, from any base.
  function keyOf(m, u, orKey) {
    if (orKey && Object.prototype.hasOwnProperty.call(m.images, u)) return u;
    let ix = indexes.get(m);
    if (!ix) {
      indexes.set(m, (ix = new Map()));
      const prefix = String(m.prefix || "").replace(/\/+$/, "");
      for (const key in m.images) {
        const e = m.images[key];
        const urls = [prefix + "/" + key, e && e.src];
        for (const [, list] of formats(e)) for (const c of valid(list)) urls.push(c[1]);
        for (const u of urls) if (typeof u === "string") ix.set(at(u, location.href), key);
      }
    }
    return ix.get(at(u, doc.baseURI));
  }

  // The entry with one srcset per format, or null when it is unusable.
  function entry(m, key) {
    const e = m.images[key];
    if (!e || typeof e !== "object") return null;
    const set = {};
    for (const [type, list] of formats(e)) {
      const c = valid(list).map((c) => `${c[1].replace(/\s/g, "%20")} ${Math.round(c[0])}w`);
      if (c.length) set[type] = c.join(", ");
    }
    const src = typeof e.src === "string" ? e.src : "";
    const w = +e.width;
    const h = +e.height;
    if (!src && !Object.keys(set).length) return null;
    return { w: w > 0 && h > 0 ? w : 0, h, src, ph: typeof e.placeholder === "string" && e.placeholder, set };
  }

  function optimizeImages(selector = "img", options = {}) {
    return withManifest(options.manifest, true, (m) => {
      const todo = [];
      const bad = [];
      for (const img of typeof selector === "string" ? doc.querySelectorAll(selector) : selector) {
        if (img.tagName !== "IMG" || img.hasAttribute(DONE)) continue;
        const key = img.src && keyOf(m, img.src);
        const e = key && entry(m, key);
        if (!e) {
          if (key) bad.push(key);
          continue;
        }
        img.setAttribute(DONE, "");
        // Intrinsic size (or the missing one of the two) first: the positions read next are
        // then those of the final layout.
        const w = +img.getAttribute("width");
        const h = +img.getAttribute("height");
        if (e.w && !(w && h)) {
          const width = w || (h ? Math.round((h * e.w) / e.h) : e.w);
          img.width = width;
          img.height = h || Math.round((width * e.h) / e.w);
        }
        todo.push({ img, e });
      }
      for (const t of todo) t.near = near(t.img.getBoundingClientRect()); // one layout for all
      for (const t of todo) upgrade(t.img, t.e, t.near, options);
      if (bad.length) warn(`unusable manifest entries: ${bad.join(", ")}`);
      return todo.length;
    });
  }

  const near = (r) =>
    (r.width || r.height) &&
    r.bottom > -MARGIN &&
    r.top < innerHeight + MARGIN &&
    r.right > -MARGIN &&
    r.left < innerWidth + MARGIN;

  function upgrade(img, e, near, o) {
    const sizes = o.sizes || img.getAttribute("sizes") || "100vw";
    const lazy = o.lazy !== false && !near && !img.hasAttribute("loading");
    const native = "loading" in HTMLImageElement.prototype;
    // Without native lazy loading the URLs wait in data- attributes for the observer.
    const hold = lazy && !native && !!G.IntersectionObserver;
    const put = (el, name, v) => el.setAttribute(hold ? DATA + name : name, v);
    // What the page shows now stays until the new image is in, unless it becomes lazy.
    const shown = !lazy && img.complete;
    let pic = img.parentElement;
    if (img.parentNode && (!pic || pic.tagName !== "PICTURE")) {
      pic = doc.createElement("picture");
      img.replaceWith(pic);
      pic.append(img);
    }
    // Lazy only after the move: Chrome fetches the new source of a loaded image at once
    // when it was made lazy before being moved.
    if (lazy && native) img.loading = "lazy";
    if (!img.hasAttribute("decoding")) img.decoding = "async";
    if (pic && pic.tagName === "PICTURE")
      for (const type of MODERN) {
        if (!e.set[type] || [...pic.children].some((s) => s.tagName === "SOURCE" && s.type === type)) continue;
        const s = doc.createElement("source");
        s.type = type;
        s.sizes = sizes;
        put(s, "srcset", e.set[type]);
        img.before(s);
      }
    const type = ORIGINAL.find((t) => e.set[t]);
    if (type && !img.hasAttribute("srcset")) {
      img.sizes = sizes;
      put(img, "srcset", e.set[type]);
    }
    const src = e.src || img.getAttribute("src");
    if (hold) img.removeAttribute("src");
    if (hold || src !== img.getAttribute("src")) put(img, "src", src);

    // A stylesheet placeholder (perf-ph-*) or the page's own background wins.
    if (o.placeholder !== false && e.ph && !shown && !PH_CLASS.test(img.className) && !img.style.background) {
      img.style.background = `url(${JSON.stringify(e.ph)}) 50%/cover no-repeat`;
      img.setAttribute(BLUR, "");
    }
    if (hold) {
      if (!observer) observer = new IntersectionObserver(seen, { rootMargin: MARGIN + "px" });
      observer.observe(img);
    }
  }

  function seen(entries) {
    for (const { isIntersecting, target: img } of entries) {
      if (!isIntersecting) continue;
      observer.unobserve(img);
      const pic = img.parentElement;
      for (const el of pic && pic.tagName === "PICTURE" ? [...pic.children] : [img])
        for (const name of ["srcset", "src"]) {
          const v = el.getAttribute(DATA + name);
          if (v == null) continue;
          el.removeAttribute(DATA + name);
          el.setAttribute(name, v);
        }
    }
  }

  function preloadCriticalImages(paths, options = {}) {
    return withManifest(options.manifest, false, (m) => {
      // One preload per image, whichever of its URLs a link (perhaps the server's) names.
      const have = new Set();
      for (const l of doc.querySelectorAll('link[rel~="preload" i]'))
        for (const u of [l.getAttribute("href"), ...(l.getAttribute("imagesrcset") || "").split(",")])
          if (u) have.add(keyOf(m, u.trim().split(/\s+/)[0]));
      let added = 0;
      const bad = [];
      for (const p of [].concat(paths || [])) {
        const key = typeof p === "string" && keyOf(m, p, true);
        if (key && have.has(key)) continue;
        const e = key && entry(m, key);
        if (!e) {
          bad.push(p);
          continue;
        }
        const type = [...MODERN, ...ORIGINAL].find((t) => e.set[t]);
        const l = doc.createElement("link");
        l.rel = "preload";
        l.as = "image";
        if (type) {
          l.type = type;
          l.setAttribute("imagesrcset", e.set[type]);
          l.setAttribute("imagesizes", options.sizes || "100vw");
        } else l.href = e.src;
        l.setAttribute("fetchpriority", "high");
        doc.head.append(l);
        have.add(key);
        added++;
      }
      if (bad.length) warn(`not in the image manifest: ${bad.join(", ")}`);
      return added;
    });
  }

  // Done with its placeholder: loaded, or failed (held URLs are not failures).
  function settle(img) {
    if (!img.complete || img.hasAttribute(DATA + "src")) return 0;
    if (PH_CLASS.test(img.className)) img.classList.add("perf-loaded");
    if (img.hasAttribute(BLUR)) {
      img.style.removeProperty("background");
      img.removeAttribute(BLUR);
    }
    return 1;
  }
  function clearPlaceholders(root = doc) {
    let n = 0;
    for (const img of root.querySelectorAll(`img[${BLUR}],img[class*="perf-ph-"]`)) n += settle(img);
    return n;
  }

  const onLoad = (ev) => ev.target.tagName === "IMG" && settle(ev.target);
  doc.addEventListener("load", onLoad, true);
  doc.addEventListener("error", onLoad, true);
  clearPlaceholders();
  if (doc.readyState === "loading") doc.addEventListener(PARSED, () => clearPlaceholders());

  G.ImageOptimizer = { version: "1.0.0", optimizeImages, preloadCriticalImages, clearPlaceholders };

  const own = script();
  if (own) {
    Promise.resolve().then(load).catch(() => {}); // fetch it now; a call reports a failure
    const sel = own.getAttribute("data-optimize");
    if (sel != null) optimizeImages(sel || "img");
  }
})();
