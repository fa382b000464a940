// A reflection's page: its length and reading time under the title, and a confirmation
// before it is deleted.
import "./site.js";
import { countWords, ready } from "./util.js";

ready(() => {
  // Deleting asks first: the form says what it deletes.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }
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
