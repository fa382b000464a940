// perf-suite CodeSplitter: loads the application's modules and named features when they
// are needed, preloads the ones a user is about to need, and outlives a deploy.
//
//   import { CodeSplitter } from "/static/_perf/code-splitter.js"; // or globalThis.CodeSplitter
//   CodeSplitter.loadFeature("chat", (chat) => chat.init());    // features/chat.js (+ .css)
//   CodeSplitter.loadModule("js/editor.js", { timeout: 5000 });  // a module namespace
//   CodeSplitter.preloadModules(["features/profile.js"]);        // fetched, not run
//
// Paths are logical, relative to the URL prefix ("js/editor.js"); one that starts with "/",
// "./" or a scheme is a URL ("/static/js/editor.js"). The page's import map
// (ASSETS.import_map_tag()) turns each module's logical URL into its hashed URL. The prefix
// comes from this module's own URL, <prefix>/_perf/code-splitter.<hash>.js.
//
// Markup, through one delegated listener per event on the document, so elements added
// later count too:
//   data-perf-preload="features/chat.js js/x.js"  preloads on pointerenter, focusin, touchstart
//   data-perf-feature="chat"                      the same for a feature: module and stylesheet
//   data-perf-preload-idle                        also preloads once the page has loaded and
//                                                 the browser is idle; a value is the list
//
// A feature's stylesheet: ASSETS.import_map_tag() follows the import map with a data block,
// <script type="application/json" id="perf-feature-styles">{"chat":{"href","integrity"}}
// </script>, when any feature has one. A feature it does not name has none, so nothing is
// asked for in vain (no 404), and a data block is not script: a strict Content-Security-
// Policy needs no nonce for it. The <link> added for a stylesheet or a preload carries the
// import map's nonce, for a policy that requires one.
//
// Stale deploys: a page of deploy N that asks for a chunk once N+1 is live gets 410 Gone for
// the old hashed URL, with a Perf-Build header naming the build now served. After a failed
// import(), one HEAD request of the failing URL (or of an asset that Resource Timing saw
// answer 410: a module fails when one of its imports does) tells a stale page from a broken
// link. A stale page reloads once per build id, kept in sessionStorage under
// "perf-reload-build", so a broken deploy cannot make it loop: a second failure for the same
// build rejects instead.
const G = globalThis;
const doc = G.document;
const SELF = "/_perf/code-splitter.";
// The URL prefix, written in by perf-build when it bundles this module into the chunks of
// the modules that import it (it then rides in their shared chunk: no request of its own).
const BUILT_PREFIX = "__PERF_URL_PREFIX__";
const FEATURES = "features/";
const STYLES_ID = "perf-feature-styles";
const RELOAD_KEY = "perf-reload-build";
const BUILD_HEADER = "Perf-Build";
const MARKED = "[data-perf-preload],[data-perf-feature]";
const IDLE = "data-perf-preload-idle";

class Timeout extends Error {}

function create() {
  const modules = new Map(); // logical URL -> Promise of the namespace (kept once loaded)
  const features = new Map(); // name -> Promise of the namespace, stylesheet applied
  const styles = new Map(); // stylesheet URL -> Promise
  let mapElement; // the <script type="importmap">, or null
  let imports; // Map: absolute logical URL -> absolute hashed URL
  let featureStyles; // name -> { href, integrity }
  let base; // origin + prefix, no trailing slash

  const list = (value) => String(value || "").split(/\s+/).filter(Boolean);
  const json = (el) => {
    try {
      return (el && JSON.parse(el.textContent)) || {};
    } catch {
      return {}; // the browser reports a broken import map itself
    }
  };

  function importMap() {
    if (!imports) {
      imports = new Map();
      mapElement = doc ? doc.querySelector('script[type="importmap"]') : null;
      for (const [key, value] of Object.entries(json(mapElement).imports || {})) {
        try {
          imports.set(new URL(key, doc.baseURI).href, new URL(value, doc.baseURI).href);
        } catch {
          // not a URL: not one of ours
        }
      }
    }
    return imports;
  }

  function prefix() {
    if (base === undefined) {
      const here = new URL(import.meta.url);
      const cut = here.pathname.lastIndexOf(SELF);
      if (cut >= 0) base = here.origin + here.pathname.slice(0, cut);
      // Bundled into another chunk: the URL prefix perf-build wrote in.
      else base = here.origin + BUILT_PREFIX;
    }
    return base;
  }

  // The absolute logical URL of a path, as the import map's keys are written.
  const urlOf = (path) => {
    const p = String(path);
    return /^([a-z][a-z\d+.-]*:|\/|\.\.?\/)/i.test(p)
      ? new URL(p, doc ? doc.baseURI : prefix()).href
      : new URL(`${prefix()}/${p}`).href;
  };
  const hashed = (url) => importMap().get(url) || url;

  // The CSP nonce of the import map, for the <link>s added under a nonce-based policy.
  function append(link) {
    importMap();
    if (mapElement && mapElement.nonce) link.nonce = mapElement.nonce;
    doc.head.append(link);
    return link;
  }

  function within(promise, ms) {
    if (!(ms > 0 && ms < Infinity)) return promise;
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Timeout(`no answer within ${ms} ms`)), ms);
    });
    return Promise.race([promise, late]).finally(() => clearTimeout(timer));
  }

  // The build id now served, when the page belongs to an earlier one; "" otherwise.
  async function staleBuild(url) {
    let suspect = url;
    try {
      // Chromium reports each response's status: an import of the module may be the one gone.
      const gone = performance
        .getEntriesByType("resource")
        .filter((e) => e.responseStatus === 410 && e.name.startsWith(prefix() + "/"))
        .pop();
      if (gone) suspect = gone.name;
    } catch {
      // no Resource Timing: ask about the module itself
    }
    try {
      const res = await fetch(suspect, { method: "HEAD", cache: "no-store" });
      return (res.status === 410 && res.headers.get(BUILD_HEADER)) || "";
    } catch {
      return "";
    }
  }

  function reload(build, path) {
    let again = true;
    try {
      again = G.sessionStorage.getItem(RELOAD_KEY) === build;
      if (!again) G.sessionStorage.setItem(RELOAD_KEY, build);
    } catch {
      // No storage, no guard against a loop: no reload.
    }
    if (again) {
      throw new Error(
        `CodeSplitter: ${path} belongs to an earlier deploy and reloading for build ${build} did not help`,
      );
    }
    G.location.reload();
    return new Promise(() => {}); // the page is going away
  }

  // A fetch that failed (as Chromium, Firefox and Safari word it), not a module that threw.
  const fetchFailed = (e) =>
    e instanceof TypeError && /fetch|load|import/i.test(e.message);

  async function load(url, path, timeout, retries) {
    const target = hashed(url);
    let error;
    let probed = false;
    for (let attempt = 0; attempt <= retries; attempt++) {
      try {
        // The first attempt goes through the import map, so the namespace is the one static
        // importers share. The module map keeps a pending or failed fetch under that URL, so
        // a retry asks for the same bytes under another: the hashed URL with a query.
        const specifier = attempt
          ? `${target}${target.includes("?") ? "&" : "?"}perf-retry=${attempt}`
          : url;
        return await within(import(specifier), timeout);
      } catch (e) {
        error = e;
        if (!(e instanceof Timeout || fetchFailed(e))) break; // it ran and threw: no retry
        if (!probed && !(e instanceof Timeout)) {
          probed = true;
          const build = await staleBuild(target);
          if (build) return reload(build, path);
        }
      }
    }
    throw new Error(`CodeSplitter: cannot load ${path}: ${(error && error.message) || error}`, {
      cause: error,
    });
  }

  function loadModule(path, { timeout = 10000, retries = 1 } = {}) {
    let url;
    try {
      url = urlOf(path);
    } catch (e) {
      return Promise.reject(e);
    }
    let p = modules.get(url);
    if (!p) {
      p = load(url, path, +timeout, Math.max(0, Math.floor(retries) || 0));
      modules.set(url, p);
      p.catch(() => modules.get(url) === p && modules.delete(url)); // a later call tries again
    }
    return p;
  }

  function featureStyle(name) {
    if (!featureStyles) {
      featureStyles = json(doc && doc.getElementById(STYLES_ID));
    }
    const s = Object.prototype.hasOwnProperty.call(featureStyles, name) && featureStyles[name];
    return s && typeof s.href === "string" ? s : null;
  }

  function loadStyle({ href, integrity }, name) {
    const url = new URL(href, doc.baseURI).href;
    let p = styles.get(url);
    if (!p) {
      p = new Promise((resolve, reject) => {
        // Applied already (the server linked it): nothing to fetch.
        for (const l of doc.querySelectorAll('link[rel~="stylesheet" i]'))
          if (l.href === url && l.sheet) return resolve();
        const link = doc.createElement("link");
        link.rel = "stylesheet";
        link.href = url;
        if (integrity) link.integrity = integrity;
        link.addEventListener("load", () => resolve(), { once: true });
        link.addEventListener(
          "error",
          () => reject(new Error(`CodeSplitter: the stylesheet of feature ${name} did not load`)),
          { once: true },
        );
        append(link);
      });
      styles.set(url, p);
      p.catch(() => styles.get(url) === p && styles.delete(url));
    }
    return p;
  }

  function loadFeature(name, callback) {
    let p = features.get(name);
    if (!p) {
      const style = doc && featureStyle(name);
      const css = style ? loadStyle(style, name) : null;
      // Reported after the module, whose failure may be a stale page that reloads.
      if (css) css.catch(() => {});
      p = loadModule(`${FEATURES}${name}.js`).then(async (m) => {
        await css;
        return m;
      });
      features.set(name, p);
      p.catch(() => features.get(name) === p && features.delete(name));
    }
    return typeof callback === "function"
      ? p.then((m) => {
          callback(m);
          return m;
        })
      : p;
  }

  function preload(href, as, integrity) {
    const rel = as ? "preload" : "modulepreload";
    // Once per URL, the server's <link>s (ASSETS.modulepreload_tags) included.
    for (const l of doc.querySelectorAll(`link[rel="${rel}"]`)) if (l.href === href) return null;
    const link = doc.createElement("link");
    link.rel = rel;
    if (as) link.as = as;
    link.href = href;
    if (integrity) link.integrity = integrity;
    // Settles either way: a preload is a hint, and a failed one is retried by the import.
    const done = new Promise((resolve) => {
      link.addEventListener("load", resolve, { once: true });
      link.addEventListener("error", resolve, { once: true });
    });
    append(link);
    return done;
  }

  // <link rel="modulepreload"> for each path: fetched and parsed, never run, never twice.
  function preloadModules(paths) {
    const waits = [];
    if (doc) {
      for (const path of [].concat(paths || [])) {
        let href;
        try {
          href = hashed(urlOf(path));
        } catch {
          continue; // not a URL
        }
        waits.push(preload(href));
      }
    }
    return Promise.all(waits).then(() => {});
  }

  function preloadFeature(name) {
    const style = featureStyle(name);
    return Promise.all([
      preloadModules([`${FEATURES}${name}.js`]),
      style && preload(new URL(style.href, doc.baseURI).href, "style", style.integrity),
    ]).then(() => {});
  }

  function preloadMarked(el, paths) {
    preloadModules(list(paths == null ? el.getAttribute("data-perf-preload") : paths));
    for (const name of list(el.getAttribute("data-perf-feature"))) preloadFeature(name);
  }

  if (doc) {
    // pointerenter does not bubble; a capturing listener on the document still sees it.
    const intent = (e) => {
      const el = e.target instanceof Element && e.target.closest(MARKED);
      if (el) preloadMarked(el);
    };
    for (const type of ["pointerenter", "focusin", "touchstart"])
      doc.addEventListener(type, intent, { capture: true, passive: true });

    const idle = () =>
      (G.requestIdleCallback || ((f) => setTimeout(f, 50)))(
        () => {
          for (const el of doc.querySelectorAll(`[${IDLE}]`)) {
            const own = el.getAttribute(IDLE).trim();
            preloadMarked(el, own || undefined);
          }
        },
        { timeout: 3000 },
      );
    // After the load event: the page's own requests come first.
    if (doc.readyState === "complete") idle();
    else G.addEventListener("load", idle, { once: true });
  }

  return { loadModule, loadFeature, preloadModules };
}

// One instance per page, whichever copy runs first: its in-flight promises, preloads and
// listeners are the page's.
export const CodeSplitter =
  G.CodeSplitter && typeof G.CodeSplitter.loadModule === "function"
    ? G.CodeSplitter
    : (G.CodeSplitter = create());
