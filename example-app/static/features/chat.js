// The coach: a panel of writing prompts drawn from the reader's own reflections (the moods
// they wrote most, the latest title), fetched from /coach/prompts. A feature: loaded by
// CodeSplitter.loadFeature("chat") when the reader first asks for it, with chat.css.

let panel;

/** Opens the coach's panel beside `trigger` (built once, refreshed on each opening). */
export async function open(trigger) {
  if (!panel) {
    panel = document.createElement("dialog");
    panel.className = "coach";
    panel.setAttribute("aria-labelledby", "coach-title");
    panel.innerHTML =
      '<h2 id="coach-title">Your coach suggests</h2><ol class="coach-prompts"></ol>' +
      '<form method="dialog"><button class="coach-close">Close</button></form>';
    document.body.append(panel);
    panel.addEventListener("close", () => trigger?.focus());
  }
  const list = panel.querySelector(".coach-prompts");
  list.replaceChildren(item("Thinking…"));
  panel.showModal();
  try {
    const response = await fetch("/coach/prompts", { headers: { accept: "application/json" } });
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    const { prompts } = await response.json();
    list.replaceChildren(...prompts.map((prompt) => item(prompt)));
  } catch (error) {
    list.replaceChildren(item(`The coach is unavailable right now (${error.message}).`));
  }
  return panel;
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}
