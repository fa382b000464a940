// A reflection's page: its length and reading time under the title.
import "./site.js";
import { countWords, ready } from "./util.js";

ready(() => {
  const article = document.querySelector("article[data-reflection]");
  const meta = article?.querySelector("[data-reading-time]");
  if (!article || !meta) {
    return;
  }
  const words = [...article.querySelectorAll("p")].reduce(
    (total, p) => total + countWords(p.textContent ?? ""),
    0,
  );
  const minutes = Math.max(1, Math.round(words / 200));
  meta.textContent = `${words} words · ${minutes} min read`;
});
