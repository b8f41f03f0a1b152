// Where the page keeps the access token: this tab's sessionStorage always; the browser's
// localStorage too when the user asked to stay signed in (off by default), so another tab or a
// new window signs in by itself. Sign out forgets both.
export const TOKEN_KEY = "ferry.token";

/** The token to sign in with, if any: this tab's own first, else the one this browser keeps. */
export function savedToken({ local, session }) {
  return session.getItem(TOKEN_KEY) || local.getItem(TOKEN_KEY) || null;
}

/** Whether this browser keeps `token` (the user chose "keep me signed in" when it was given). */
export function isKept({ local }, token) {
  return Boolean(token) && local.getItem(TOKEN_KEY) === token;
}

/** Remember a token for this tab, and for the whole browser only when `keep` is true. */
export function keepToken({ local, session }, token, keep) {
  session.setItem(TOKEN_KEY, token);
  if (keep) local.setItem(TOKEN_KEY, token);
  else if (local.getItem(TOKEN_KEY) !== null) local.removeItem(TOKEN_KEY);
}

/** Forget the token everywhere (sign out, or a token the backend refused). */
export function forgetToken({ local, session }) {
  session.removeItem(TOKEN_KEY);
  local.removeItem(TOKEN_KEY);
}
