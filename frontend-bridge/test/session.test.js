// Where the token is kept: this tab always; the browser only when the user asked to stay signed in.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TOKEN_KEY, forgetToken, isKept, keepToken, savedToken } from "../web/session.js";

/** The Web Storage interface over a Map: what the functions use of sessionStorage and localStorage. */
function storage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
    items,
  };
}

test("a token is kept for this tab only unless the user asks the browser to keep it", () => {
  const tab = { local: storage(), session: storage() };
  keepToken(tab, "t1", false);
  assert.equal(tab.session.getItem(TOKEN_KEY), "t1");
  assert.equal(tab.local.getItem(TOKEN_KEY), null, "off by default: nothing in localStorage");
  assert.equal(savedToken({ local: tab.local, session: storage() }), null, "a second tab asks again");

  keepToken(tab, "t2", true);
  const secondTab = { local: tab.local, session: storage() };
  assert.equal(savedToken(secondTab), "t2", "a second tab of the same browser signs in by itself");
  assert.equal(isKept(secondTab, "t2"), true);
  assert.equal(isKept(secondTab, "other"), false);

  keepToken(tab, "t3", false); // signed in again without asking to be kept: the browser forgets
  assert.equal(tab.local.getItem(TOKEN_KEY), null);
});

test("this tab's token wins over the browser's, and sign out forgets both", () => {
  const local = storage();
  const tab = { local, session: storage() };
  keepToken({ local, session: storage() }, "kept", true);
  keepToken(tab, "mine", false);
  local.setItem(TOKEN_KEY, "kept");
  assert.equal(savedToken(tab), "mine");
  forgetToken(tab);
  assert.equal(savedToken(tab), null);
  assert.equal(local.items.size + tab.session.items.size, 0);
});
