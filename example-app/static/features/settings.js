// The reader's settings: theme and date style, kept in this browser (localStorage) and
// applied at once. A feature: loaded by CodeSplitter.loadFeature("settings"), with
// settings.css, when the reader first opens it.
import { readPreferences, savePreferences } from "../js/site.js";

let panel;

/** Opens the settings panel; a change applies and is saved at once. */
export function open(trigger) {
  if (!panel) {
    panel = document.createElement("dialog");
    panel.className = "settings";
    panel.setAttribute("aria-labelledby", "settings-title");
    panel.innerHTML = `
      <h2 id="settings-title">Settings</h2>
      <form method="dialog">
        <fieldset><legend>Theme</legend>
          <label><input type="radio" name="theme" value=""> As the system</label>
          <label><input type="radio" name="theme" value="light"> Light</label>
          <label><input type="radio" name="theme" value="dark"> Dark</label>
        </fieldset>
        <fieldset><legend>Dates</legend>
          <label><input type="radio" name="dates" value="relative"> 3 days ago</label>
          <label><input type="radio" name="dates" value="absolute"> 12 Mar 2026</label>
        </fieldset>
        <button>Done</button>
      </form>`;
    document.body.append(panel);
    const form = panel.querySelector("form");
    form.addEventListener("change", () => {
      const data = new FormData(form);
      const preferences = { dates: data.get("dates") ?? "relative" };
      if (data.get("theme")) {
        preferences.theme = data.get("theme");
      }
      savePreferences(preferences);
    });
    panel.addEventListener("close", () => trigger?.focus());
  }
  const current = readPreferences();
  for (const input of panel.querySelectorAll("input")) {
    const value = input.name === "theme" ? (current.theme ?? "") : (current.dates ?? "relative");
    input.checked = input.value === value;
  }
  panel.showModal();
  return panel;
}
