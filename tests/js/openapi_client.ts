// A typed client generated from the server's OpenAPI document: openapi-typescript (default
// options) writes schema.ts beside this file, `tsc --strict` must accept both, and the
// compiled client then calls the real server with openapi-fetch.
//
//   node openapi_client.js <base url>
//
// Prints one JSON line with what it saw.
import createClient from "openapi-fetch";
import { createParser } from "eventsource-parser";
import type { components, paths } from "./schema.js";

type RunEvent = components["schemas"]["RunEvent"];
type RecommendedItem = components["schemas"]["RecommendedItem"];
type StreamedEvent = paths["/v1/recommendations/stream"]["post"]["responses"][200]["content"]["text/event-stream"];

const baseUrl = process.argv[2];
const client = createClient<paths>({ baseUrl });

/** Every run event type narrowed by its `type`; the compiler proves the switch exhaustive. */
function describe(event: RunEvent): string {
  switch (event.type) {
    case "run_started":
      return `run ${event.run_id} for ${event.user_id ?? "a visitor"} (${event.task})`;
    case "agent_started":
    case "agent_finished":
      return event.agent;
    case "thought":
    case "token":
      return event.text;
    case "action":
      return `${event.tool}(${Object.keys(event.args).join(", ")})`;
    case "observation":
      return event.text;
    case "candidates":
      return `${event.total} candidates, best ${event.items[0]?.item_id ?? "none"}`;
    case "reflection":
      return event.accept ? "accepted" : event.problems.join("; ");
    case "recommendations":
      return event.items.map((item: RecommendedItem) => item.title).join(", ");
    case "error":
      return `${event.code ?? "error"}: ${event.message} (recoverable: ${event.recoverable})`;
    case "run_finished":
      return `${event.status}: ${event.output.recommendations.length} items`;
    default: {
      const unknown: never = event;
      return String(unknown);
    }
  }
}

async function readEvents(body: ReadableStream<Uint8Array>): Promise<StreamedEvent[]> {
  const events: StreamedEvent[] = [];
  const parser = createParser({
    onEvent: (frame) => events.push(JSON.parse(frame.data) as StreamedEvent),
  });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    parser.feed(decoder.decode(value, { stream: true }));
  }
}

const recommended = await client.POST("/v1/recommendations", {
  body: { user_id: "u001", count: 3, filters: { include: { genres: ["Comedy"] } }, fields: ["genres"] },
});
if (recommended.error) throw new Error(recommended.error.error.message);
const items: RecommendedItem[] = recommended.data.items;
const genres: string[] = items.map((item) => String(item.properties["genres"]));

const feedback = await client.POST("/v1/events", {
  body: {
    events: [
      {
        event_id: `ts-${Date.now()}`,
        type: "like",
        user_id: "u001",
        item_id: items[0].item_id,
        recommendation_id: recommended.data.recommendation_id,
      },
    ],
  },
});
if (feedback.error) throw new Error(feedback.error.error.message);

// openapi-fetch infers `parseAs` from an options object typed as a whole
const streamOptions = {
  body: { user_id: "u001", count: 3 },
  params: { header: { "Idempotency-Key": `ts-${Date.now()}` } },
  parseAs: "stream" as const,
};
const streamed = await client.POST("/v1/recommendations/stream", streamOptions);
if (streamed.error || !streamed.data) throw new Error(`stream: ${streamed.response.status}`);
const location = streamed.response.headers.get("Content-Location");
const events = await readEvents(streamed.data);
const runId = events[0].run_id;

const resumed = await client.GET("/v1/runs/{run_id}/stream", {
  params: { path: { run_id: runId }, header: { "Last-Event-ID": "3" } },
  parseAs: "stream" as const,
});
if (resumed.error || !resumed.data) throw new Error(`resume: ${resumed.response.status}`);
const rest = await readEvents(resumed.data);

const over = await client.GET("/v1/runs/{run_id}/stream", {
  params: { path: { run_id: runId }, header: { "Last-Event-ID": String(events.length) } },
  parseAs: "stream" as const,
});

console.log(
  JSON.stringify({
    titles: items.map((item) => item.title),
    genres,
    feedback: feedback.data.results.map((result) => result.status),
    location,
    types: events.map((event) => event.type),
    seqs: events.map((event) => event.seq),
    described: events.map(describe),
    resumedSeqs: rest.map((event) => event.seq),
    overStatus: over.response.status,
  }),
);
