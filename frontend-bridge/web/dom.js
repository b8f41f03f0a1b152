// A tiny DOM builder: h("p", {class: "x", onclick}, "text", child).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set text only when it changed (keeps screen readers and selection calm). */
export function setText(el, text) {
  const value = String(text ?? "");
  if (el.textContent !== value) el.textContent = value;
}

let announceTimer = null;
/** Say something to screen-reader users through the page's polite live region. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  clearTimeout(announceTimer);
  region.textContent = "";
  announceTimer = setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/**
 * A progress bar with role="progressbar". `update({percent, text, indeterminate, tone})`.
 * aria-valuenow always carries the last known percent; aria-valuetext says it in words.
 */
export function progressBar(label) {
  const fillEl = h("div", { class: "bar-fill" });
  const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0, "aria-label": label }, fillEl);
  bar.update = ({ percent = 0, text, indeterminate = false, tone = "" }) => {
    const value = Math.max(0, Math.min(100, percent ?? 0));
    const rounded = String(Math.floor(value * 10) / 10);
    if (bar.getAttribute("aria-valuenow") !== rounded) bar.setAttribute("aria-valuenow", rounded);
    if (text !== undefined && bar.getAttribute("aria-valuetext") !== text) bar.setAttribute("aria-valuetext", text);
    fillEl.style.width = `${indeterminate ? 100 : value}%`;
    bar.classList.toggle("indeterminate", indeterminate);
    bar.dataset.tone = tone;
  };
  return bar;
}
