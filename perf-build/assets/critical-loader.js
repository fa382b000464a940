// perf-suite: applies the stylesheets that `critical_css!` deferred.
//
// The page carries its critical CSS inline and links each full stylesheet with
// `media="print" data-perf-defer`, which the browser fetches without blocking the first
// paint. This script (external, so a strict Content-Security-Policy needs no
// 'unsafe-inline' and no `onload=` attribute) switches each one to all media once it has
// loaded. Without JavaScript, the page's <noscript> links apply the stylesheets instead.
(() => {
  const apply = (link) => {
    link.media = link.getAttribute("data-perf-defer") || "all";
    link.removeAttribute("data-perf-defer");
  };
  const watch = (link) => {
    if (link.sheet) {
      apply(link);
    } else {
      link.addEventListener("load", () => apply(link), { once: true });
      // A failed load leaves the critical CSS in place; nothing else to do.
    }
  };
  for (const link of document.querySelectorAll("link[data-perf-defer]")) {
    watch(link);
  }
  // Stylesheets added after this script ran (a late <head> block): watch them too.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => {
      for (const link of document.querySelectorAll("link[data-perf-defer]")) {
        watch(link);
      }
    });
  }
})();
