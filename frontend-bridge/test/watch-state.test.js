// watchImport's decisions, as pure functions over a plain state: no socket, no timers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  disconnected,
  fallbackDelay,
  judgeEvent,
  newWatch,
  nextPollDelay,
  polled,
  settle,
  shouldResubscribe,
  subscribeAnswered,
  subscribeSent,
  subscribeSettled,
  takeSnapshot,
} from "../src/watch-state.js";
import { completedData, eventData, jobSnapshot } from "./support/fakes.js";

const CFG = { connectTimeoutMs: 4000, pollIntervalMs: 1000, maxPollIntervalMs: 10000, resubscribeMs: 5000 };
const live = { replay: false, catchup: false, via: "socket" };
const catchup = { replay: false, catchup: true, via: "socket" };
const poll = { replay: false, catchup: false, via: "poll" };

/** A watch whose subscribe was acknowledged on the current connection. */
function subscribedWatch(afterSeq = 0) {
  const sent = subscribeSent(newWatch(afterSeq));
  return subscribeSettled(subscribeAnswered(sent, sent.subscribeGen, { ok: true }), sent.subscribeGen);
}

function feed(state, seqs, meta = live) {
  const verdicts = [];
  for (const seq of seqs) {
    const judged = judgeEvent(state, "job-1", { type: "import.progress", data: eventData(seq), meta });
    state = judged.state;
    verdicts.push(judged.verdict);
  }
  return { state, verdicts };
}

describe("counting events", () => {
  test("each seq counts once, in increasing order; repeats are duplicates, older ones stale", () => {
    const { state, verdicts } = feed(subscribedWatch(), [1, 2, 2, 3, 1, 5, 4]);
    assert.deepEqual(verdicts, ["new", "new", "duplicate", "new", "stale", "new", "stale"]);
    assert.equal(state.stream.lastSeq, 5);
    assert.equal(state.stream.view.percent, 50);
  });

  test("a stale event never moves the snapshot back", () => {
    let state = takeSnapshot(subscribedWatch(), jobSnapshot(6));
    assert.equal(state.stream.view.percent, 60);
    ({ state } = feed(state, [2]));
    assert.equal(state.stream.lastSeq, 2, "history still counts for the timeline");
    assert.equal(state.stream.view.percent, 60, "but the shown progress stays at the snapshot");
    ({ state } = feed(state, [7]));
    assert.equal(state.stream.view.percent, 70);
  });

  test("another job's event on the shared socket is foreign and changes nothing", () => {
    const before = subscribedWatch();
    const judged = judgeEvent(before, "job-1", { type: "import.progress", data: eventData(1, { job_id: "job-2" }), meta: live });
    assert.equal(judged.verdict, "foreign");
    assert.equal(judged.state, before);
  });

  test("an event outside the contract is invalid, says why, and is not counted", () => {
    const judged = judgeEvent(subscribedWatch(), "job-1", { type: "import.progress", data: eventData(1, { percent: 140 }), meta: live });
    assert.equal(judged.verdict, "invalid");
    assert.match(judged.message, /percent/);
    assert.equal(judged.state.stream.lastSeq, 0);
  });

  test("an operator replay is shown, never counted", () => {
    const judged = judgeEvent(subscribedWatch(), "job-1", { type: "import.progress", data: eventData(3), meta: { ...live, replay: true } });
    assert.equal(judged.verdict, "replay");
    assert.equal(judged.state.stream.lastSeq, 0);
  });

  test("a live socket event before the subscribe ack is set aside; catch-up and polled events count", () => {
    const sent = subscribeSent(newWatch());
    assert.deepEqual(feed(sent, [1]).verdicts, ["unsubscribed"]);
    assert.deepEqual(feed(sent, [1], catchup).verdicts, ["new"]);
    assert.deepEqual(feed(sent, [1], poll).verdicts, ["new"]);
  });

  test("an event after the terminal one comes after the end", () => {
    let { state } = feed(subscribedWatch(), [1]);
    state = judgeEvent(state, "job-1", { type: "import.completed", data: completedData(2), meta: live }).state;
    assert.deepEqual(feed(state, [3]).verdicts, ["after_end"]);
  });
});

describe("settling a snapshot", () => {
  test("an open job's snapshot is settled at once and the watch goes on", () => {
    const { state, outcome } = settle(takeSnapshot(newWatch(), jobSnapshot(3)));
    assert.equal(outcome, "open");
    assert.equal(state.pendingSnapshot, null);
  });

  test("a terminal snapshot waits behind its missing events, then finishes once they are counted", () => {
    const finished = jobSnapshot(3, { state: "succeeded", phase: "done", percent: 100 });
    let state = takeSnapshot(subscribedWatch(), finished);
    const behind = settle(state);
    assert.equal(behind.outcome, "behind");
    assert.equal(behind.terminal.type, "import.completed", "what to end with if the events never come");
    ({ state } = feed(behind.state, [1, 2, 3], catchup));
    const caughtUp = settle(state);
    assert.equal(caughtUp.outcome, "finish");
    assert.equal(caughtUp.terminal.type, "import.completed");
    assert.equal(caughtUp.terminal.data.seq, 3);
  });

  test("a terminal event counted finishes the watch with that event", () => {
    const data = completedData(4);
    const { state } = judgeEvent(subscribedWatch(), "job-1", { type: "import.completed", data, meta: live });
    const settled = settle(state);
    assert.equal(settled.outcome, "finish");
    assert.deepEqual(settled.terminal, { type: "import.completed", data });
  });
});

describe("subscribe and connection", () => {
  test("live events count from the ack of the current subscribe on", () => {
    const sent = subscribeSent(newWatch());
    assert.equal(sent.subscribing, true);
    assert.equal(sent.subscribed, false);
    assert.equal(subscribeAnswered(sent, sent.subscribeGen, { ok: false }).subscribed, false, "a refusal counts nothing");
    const acked = subscribeAnswered(sent, sent.subscribeGen, { ok: true });
    assert.equal(acked.subscribed, true);
    assert.equal(subscribeSettled(acked, acked.subscribeGen).subscribing, false);
  });

  test("an ack from a dropped connection never marks the job subscribed", () => {
    const sent = subscribeSent(newWatch());
    const dropped = disconnected(sent);
    const late = subscribeAnswered(dropped, sent.subscribeGen, { ok: true });
    assert.equal(late.subscribed, false);
    assert.equal(subscribeSettled(late, sent.subscribeGen), late, "nor settles the next subscribe");
  });

  test("a socket drop stops counting live events and goes back to connecting", () => {
    const state = disconnected({ ...subscribedWatch(), mode: "socket" });
    assert.equal(state.mode, "connecting");
    assert.equal(state.subscribed, false);
    assert.deepEqual(feed(state, [1]).verdicts, ["unsubscribed"]);
    assert.equal(disconnected({ ...newWatch(), mode: "polling" }).mode, "polling", "polling goes on");
  });

  test("a socket drop switches to polling after connectTimeoutMs; a refused or timed-out subscribe at once", () => {
    const state = { ...newWatch(), mode: "connecting" };
    assert.equal(fallbackDelay(state, "drop", CFG), 4000);
    assert.equal(fallbackDelay(state, "connecting", CFG), 4000);
    assert.equal(fallbackDelay(state, "down", CFG), 0);
    assert.equal(fallbackDelay(state, "no_ack", CFG), 0);
    assert.equal(fallbackDelay(state, "refused", CFG), 0);
    assert.equal(fallbackDelay({ ...state, mode: "polling" }, "drop", CFG), null, "already polling");
    assert.equal(fallbackDelay({ ...state, ended: true }, "drop", CFG), null, "ended");
  });
});

describe("polling", () => {
  test("a failed round doubles the polling delay up to the ceiling; a good one goes back to the period", () => {
    const delays = [];
    let interval = CFG.pollIntervalMs;
    for (let round = 0; round < 6; round += 1) delays.push((interval = nextPollDelay(interval, true, CFG)));
    assert.deepEqual(delays, [2000, 4000, 8000, 10000, 10000, 10000]);
    assert.equal(nextPollDelay(interval, false, CFG), 1000);
  });

  test("a connected socket is resubscribed every resubscribeMs of polling, never while a subscribe is in flight", () => {
    let state = subscribeSettled(subscribeSent(newWatch()), 1); // sent at 0 ms of polling, timed out
    state = polled(state, 4000);
    assert.equal(shouldResubscribe(state, true, CFG.resubscribeMs), false);
    state = polled(state, 1000);
    assert.equal(shouldResubscribe(state, true, CFG.resubscribeMs), true);
    assert.equal(shouldResubscribe(state, false, CFG.resubscribeMs), false, "not while the socket is down");
    const again = subscribeSent(state);
    assert.equal(again.lastSubscribeAt, 5000);
    assert.equal(shouldResubscribe(polled(again, 5000), true, CFG.resubscribeMs), false, "in flight");
  });

  test("a watch never subscribed resubscribes at the first polling round over a connected socket", () => {
    assert.equal(shouldResubscribe(polled(newWatch(), 1000), true, CFG.resubscribeMs), true);
  });
});
