// @microsoft/fetch-event-source in Node against a real agentrec server, with its default
// retry (no onerror, no onopen): POST /v1/recommendations/stream with an Idempotency-Key.
// The base URL given is a loopback proxy that cuts the first connection mid-stream; the
// library then re-sends the POST with `last-event-id`, and the server attaches it to the run.
//
//   node fetch_event_source.mjs <base url> <idempotency key>
//
// Prints one JSON line: {events: [{id, event, data}], requests: [{lastEventId}], closed}.
import { fetchEventSource } from '@microsoft/fetch-event-source';

// The library is written for browsers: it calls window.fetch / window.setTimeout (Node has
// them on globalThis) and, when a stream ends, document.removeEventListener (a page that is
// never hidden, here).
globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

const [base, key] = process.argv.slice(2);
const events = [];
const requests = [];
let closed = false;

await fetchEventSource(`${base}/v1/recommendations/stream`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'Idempotency-Key': key },
  body: JSON.stringify({ user_id: 'u001', count: 5 }),
  openWhenHidden: true, // no page visibility in Node
  fetch: (url, init) => {
    // observes each request the library makes (its retries re-send the headers it keeps)
    requests.push({ lastEventId: init.headers['last-event-id'] ?? null });
    return fetch(url, init);
  },
  onmessage(message) {
    events.push({ id: message.id, event: message.event, data: JSON.parse(message.data) });
  },
  onclose() {
    closed = true;
  },
});

console.log(JSON.stringify({ events, requests, closed }));
