// Small helpers the watches share: calling a user's handler safely, and the timers to use.

/**
 * A caller for a handlers object: `call("onEvent", e)` runs `handlers.onEvent(e)` if it exists. A
 * handler that throws never breaks the watch: its error is rethrown on its own microtask, where it
 * is reported like any uncaught error.
 */
export function callerFor(handlers) {
  return (name, ...args) => {
    try {
      handlers[name]?.(...args);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  };
}

/** The timers given (a test's fake clock), or the global ones. */
export function timersOr(timers) {
  return timers ?? { setTimeout: globalThis.setTimeout.bind(globalThis), clearTimeout: globalThis.clearTimeout.bind(globalThis) };
}
