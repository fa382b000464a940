// perf-suite development mode: the page's end of live reload. Injected by perf-rt into
// every HTML page of a debug build run with PERF_DEV=1, never into a release build.
//
// It listens to the server's events (server-sent events, `events` beside this script):
// - `css`: stylesheets changed: each <link rel=stylesheet> of one is replaced by a link to
//   the new file, the old one removed once the new one applies (no flash), and the inline
//   critical CSS removed (the full stylesheets now carry every rule);
// - `reload`: anything else changed (a script, an image): the page reloads;
// - `build-error`: the build failed: the error is shown over the page until a build
//   succeeds (`built`, `css` or `reload`);
// - `hello`, on every (re)connection: the server's instance and build generation; when
//   either differs from what this page was rendered with, the page reloads (the server was
//   restarted, or changes happened while the connection was down).
(() => {
  const script = document.currentScript;
  if (!script || !window.EventSource) return;
  const rendered = {
    instance: script.getAttribute("data-instance"),
    generation: Number(script.getAttribute("data-generation")),
  };
  const events = new EventSource(new URL("events", script.src));
  let overlay = null;

  const hideError = () => {
    if (overlay) {
      overlay.remove();
      overlay = null;
    }
  };
  const showError = (message) => {
    hideError();
    overlay = document.createElement("div");
    overlay.id = "perf-dev-error";
    overlay.setAttribute("role", "alert");
    const s = overlay.style;
    s.position = "fixed";
    s.inset = "0";
    s.zIndex = "2147483647";
    s.overflow = "auto";
    s.padding = "2rem";
    s.background = "rgba(20, 20, 24, 0.94)";
    s.color = "#f4f4f5";
    s.font = "14px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
    const title = document.createElement("p");
    title.textContent = "perf-build: the assets did not build; the page shows the last good build.";
    title.style.color = "#fca5a5";
    title.style.fontWeight = "bold";
    const pre = document.createElement("pre");
    pre.textContent = message;
    pre.style.whiteSpace = "pre-wrap";
    overlay.append(title, pre);
    (document.body || document.documentElement).append(overlay);
  };

  const swap = (sheets) => {
    const pending = [];
    for (const link of document.querySelectorAll("link[href]")) {
      const path = new URL(link.href, location.href).pathname;
      const sheet = sheets.find((s) => s.from.includes(path));
      if (!sheet) continue;
      // A preload has done its work; pointed at the new file it would fetch it again.
      if (link.rel === "preload") {
        link.remove();
        continue;
      }
      if (link.rel !== "stylesheet") continue;
      const next = link.cloneNode();
      // Before the new URL is set: the integrity value is the old file's.
      next.removeAttribute("integrity");
      next.removeAttribute("data-perf-defer");
      if (link.hasAttribute("data-perf-defer")) next.media = "all";
      next.href = sheet.to;
      pending.push(
        new Promise((done) => {
          next.addEventListener("load", () => done(true), { once: true });
          next.addEventListener("error", () => done(false), { once: true });
        }).then((loaded) => {
          // A file that failed to load leaves the old one applied.
          (loaded ? link : next).remove();
          return loaded;
        }),
      );
      link.after(next);
    }
    Promise.all(pending).then((loaded) => {
      if (loaded.every(Boolean)) {
        for (const style of document.querySelectorAll("style[data-perf-critical]")) {
          style.remove();
        }
      }
      document.documentElement.dispatchEvent(new CustomEvent("perf-dev:css", { detail: sheets }));
    });
  };

  events.addEventListener("hello", (e) => {
    const now = JSON.parse(e.data);
    if (now.instance !== rendered.instance || now.generation !== rendered.generation) {
      location.reload();
    }
  });
  events.addEventListener("css", (e) => {
    const data = JSON.parse(e.data);
    rendered.generation = data.generation;
    hideError();
    swap(data.sheets);
  });
  events.addEventListener("reload", () => location.reload());
  events.addEventListener("built", (e) => {
    rendered.generation = JSON.parse(e.data).generation;
    hideError();
  });
  events.addEventListener("build-error", (e) => showError(JSON.parse(e.data).message));
})();
