// Smoke check of one bundle of bench/bundle_corpus.py: `node smoke.mjs FILE GLOBAL` imports
// FILE (an ES module whose entry sets globalThis[GLOBAL]) and prints, as JSON, the results of
// calling a few of the library's functions, the ones the bundle has. Every bundler's output
// and the unbundled entry must print the same line.

import { pathToFileURL } from "node:url";

const [file, name] = process.argv.slice(2);
await import(pathToFileURL(file).href);
const lib = globalThis[name];
const out = { exports: Object.keys(lib).sort().length };
const has = (...fns) => fns.every((f) => typeof lib[f] === "function");
const check = (key, fns, f) => {
  if (has(...fns)) out[key] = f();
};

if (name === "_") {
  check("chunk", ["chunk"], () => lib.chunk([1, 2, 3, 4, 5], 2));
  check("groupBy", ["groupBy"], () => lib.groupBy([6.1, 4.2, 6.3], Math.floor));
  check("merge", ["merge"], () => lib.merge({ a: [{ b: 2 }, { d: 4 }] }, { a: [{ c: 3 }, { e: 5 }] }));
  check("debounce", ["debounce"], () => typeof lib.debounce(() => {}, 10).cancel);
  check("template", ["template"], () => lib.template("hello <%= user %>!")({ user: "fred" }));
  check("sortBy", ["sortBy"], () => lib.sortBy([{ a: 3 }, { a: 1 }, { a: 2 }], "a"));
  check("cloneDeep", ["cloneDeep", "isEqual"], () => lib.isEqual(lib.cloneDeep({ a: [1, { b: new Date(0) }] }), { a: [1, { b: new Date(0) }] }));
  check("chain", ["chain"], () => lib.chain([3, 1, 2]).sortBy().map((x) => x * 2).value());
} else if (name === "d3") {
  check("scale", ["scaleLinear"], () => lib.scaleLinear().domain([0, 10]).range([0, 100])(2.5));
  check("extent", ["extent"], () => lib.extent([3, 1, 2]));
  check("format", ["format"], () => lib.format(",.2f")(1234.567));
  check("csv", ["csvParse"], () => lib.csvParse("a,b\n1,2\n3,4"));
  check("interpolate", ["interpolateRgb"], () => lib.interpolateRgb("red", "blue")(0.5));
  check("utcFormat", ["utcFormat"], () => lib.utcFormat("%Y-%m-%d %H:%M")(new Date(Date.UTC(2026, 11, 3, 15, 4))));
  check("hierarchy", ["hierarchy"], () => lib.hierarchy({ children: [{}, { children: [{}] }] }).count().value);
  check("line", ["line"], () => lib.line()([[0, 0], [1, 2], [3, 1]]));
  check("geoArea", ["geoArea"], () => lib.geoArea({ type: "Polygon", coordinates: [[[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]] }));
  check("bin", ["bin"], () => lib.bin().thresholds(3)([1, 2, 2, 3, 5, 8]).map((b) => b.length));
}
console.log(JSON.stringify(out));
