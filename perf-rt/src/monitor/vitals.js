/* perf-suite browser metrics: LCP, FCP, CLS, INP and TTFB of this page view, sent once
   (again only with new values) as a beacon when the page is hidden or left. A back/forward
   cache restore is a new view: own CLS and INP, FCP = LCP = time to next frame, no TTFB.
   <script src=".." data-endpoint="/url" data-flush-after-ms="N"> overrides the endpoint and
   also sends N ms after load, once the paint metrics are in; so does a URL ending in
   #perf-vitals-flush. window.perfVitals = { values(), flush() }. */
(function () {
  'use strict';
  var P = window.PerformanceObserver;
  if (!P || !navigator.sendBeacon) return;
  var tag = document.currentScript;
  var attr = function (name) { return tag && tag.getAttribute(name); };
  var endpoint = attr('data-endpoint') || '/api/performance/client';
  var nav = performance.getEntriesByType('navigation')[0] || {};
  var start = nav.activationStart || 0; // prerendered pages count from activation
  var hiddenAt = document.visibilityState === 'hidden' ? 0 : Infinity;
  var v = {}, observers = [], sent = '', lcpDone = false, restored = false, countBase = 0;
  var cls = { sum: 0, first: 0, last: 0 }, worst = [];

  function since(t) { return Math.max(0, t - start); }
  function observe(type, handle, extra) {
    if ((P.supportedEntryTypes || []).indexOf(type) < 0) return false;
    var o = new P(function (list) { handle(list.getEntries()); });
    var options = { type: type, buffered: true };
    for (var k in extra) options[k] = extra[k];
    o.observe(options);
    observers.push([o, handle]);
    return true;
  }

  observe('paint', function (list) {
    list.forEach(function (e) {
      if (e.name === 'first-contentful-paint' && e.startTime < hiddenAt) v.FCP = since(e.startTime);
    });
  });
  var hasLcp = observe('largest-contentful-paint', function (list) {
    var e = list[list.length - 1];
    if (e && !lcpDone && e.startTime < hiddenAt) v.LCP = since(e.startTime);
  });
  // Shifts come in session windows (gaps under 1 s, at most 5 s long): the worst counts.
  var hasCls = observe('layout-shift', function (list) {
    list.forEach(function (e) {
      if (e.hadRecentInput) return;
      if (cls.sum && e.startTime - cls.last < 1000 && e.startTime - cls.first < 5000) {
        cls.sum += e.value;
      } else {
        cls.sum = e.value;
        cls.first = e.startTime;
      }
      cls.last = e.startTime;
      v.CLS = Math.max(v.CLS || 0, cls.sum);
    });
  });
  if (hasCls) v.CLS = 0;
  // Each interaction's longest event; the few worst give the 98th percentile.
  function interaction(list) {
    list.forEach(function (e) {
      if (!e.interactionId) return;
      var same = worst.filter(function (w) { return w.id === e.interactionId; })[0];
      if (same) same.d = Math.max(same.d, e.duration);
      else worst.push({ id: e.interactionId, d: e.duration });
    });
    worst.sort(function (a, b) { return b.d - a.d; });
    worst.length = Math.min(worst.length, 10);
  }
  observe('event', interaction, { durationThreshold: 40 });
  observe('first-input', interaction);

  function route() {
    var timing = (nav.serverTiming || []).filter(function (t) { return t.name === 'route'; })[0];
    return (timing && timing.description) || location.pathname.slice(0, 200);
  }
  function values() {
    observers.forEach(function (o) { o[1](o[0].takeRecords()); });
    if (nav.responseStart > 0 && !restored) v.TTFB = since(nav.responseStart);
    if (worst.length) {
      // Interactions under 40 ms are only counted (this view's: since a restore).
      var count = Math.max((performance.interactionCount || 0) - countBase, worst.length);
      v.INP = worst[Math.min(worst.length - 1, Math.floor(count / 50))].d;
    }
    var out = {};
    for (var k in v) out[k] = Math.round(v[k] * (k === 'CLS' ? 1e4 : 10)) / (k === 'CLS' ? 1e4 : 10);
    return out;
  }
  function flush() {
    var metrics = values();
    var body = JSON.stringify({ route: route(), metrics: metrics });
    if (!Object.keys(metrics).length || body === sent) return false;
    sent = body;
    return navigator.sendBeacon(endpoint, body);
  }

  function stopLcp() { lcpDone = true; }
  ['keydown', 'click'].forEach(function (type) {
    addEventListener(type, stopLcp, { once: true, capture: true });
  });
  addEventListener('visibilitychange', function () {
    if (document.visibilityState !== 'hidden') return;
    hiddenAt = Math.min(hiddenAt, performance.now());
    values();
    stopLcp();
    flush();
  }, true);
  addEventListener('pagehide', flush, true);
  // Back/forward cache restore: the last view was sent on pagehide; paints do not repeat.
  addEventListener('pageshow', function (event) {
    if (!event.persisted) return;
    // Queued entries are the last view's.
    observers.forEach(function (o) { o[0].takeRecords(); });
    v = hasCls ? { CLS: 0 } : {};
    cls = { sum: 0, first: 0, last: 0 };
    worst = [];
    sent = '';
    restored = lcpDone = true;
    start = event.timeStamp;
    hiddenAt = document.hidden ? 0 : Infinity;
    countBase = performance.interactionCount || 0;
    requestAnimationFrame(function () {
      requestAnimationFrame(function () {
        if (hiddenAt === Infinity) v.FCP = v.LCP = since(performance.now());
      });
    });
  }, true);
  // Test mode. Under a virtual-time budget a headless browser runs timers far ahead of its
  // frames, so paint entries may never come; a pending request pauses virtual time: this
  // refetches the script until LCP is in (50 times at most), then sends.
  var after = attr('data-flush-after-ms');
  if (after === null && location.hash === '#perf-vitals-flush') after = '0';
  if (after !== null) {
    var tries = 0;
    var wait = function () {
      values();
      if (hasLcp && !('LCP' in v) && tries++ < 50) {
        fetch((tag && tag.src) || location.href, { cache: 'no-store' }).then(wait, wait);
      } else flush();
    };
    var later = function () { setTimeout(wait, +after || 0); };
    if (document.readyState === 'complete') later();
    else addEventListener('load', later);
  }
  window.perfVitals = { values: values, flush: flush };
})();
