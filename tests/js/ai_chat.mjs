// The Vercel AI SDK (`ai`) in Node against a real agentrec server: the chat logic useChat
// runs (AbstractChat with DefaultChatTransport, unmodified), with a plain in-memory state.
//
//   node ai_chat.mjs <base url> <chat id>
//
// Two turns, then a third whose reply is held in flight by the server's (fake, gated) LLM:
// the client stops reading mid-reply (useChat's stop(): a disconnect, not a cancel), prints
// {"resuming": true} once GET /v1/chat/{id}/stream has answered 200 (the test then releases
// the LLM), and resumes; a last resume answers 204 (nothing in flight). Prints the result as
// the last JSON line.
import { AbstractChat, DefaultChatTransport } from 'ai';
import { z } from 'zod';

const [base, chatId] = process.argv.slice(2);

class PlainChatState {
  status = 'ready';
  error = undefined;
  messages = [];
  pushMessage = (message) => { this.messages = [...this.messages, message]; };
  popMessage = () => { this.messages = this.messages.slice(0, -1); };
  replaceMessage = (index, message) => {
    this.messages = this.messages.map((m, i) => (i === index ? message : m));
  };
  snapshot = (value) => structuredClone(value);
}

class NodeChat extends AbstractChat {
  constructor(init) {
    super({ ...init, state: new PlainChatState() });
  }
  get messages() {
    return this.state.messages;
  }
}

const Item = z.object({
  item_id: z.string(),
  rank: z.number().int(),
  title: z.string(),
  explanation: z.string(),
  source: z.enum(['personalized', 'fallback', 'exploration']),
});
const Recommendations = z.object({
  run_id: z.string(),
  recommendation_id: z.string(),
  items: z.array(Item).min(1),
});

const log = (value) => console.log(JSON.stringify(value));
const resumes = [];
const trace = [];
const errors = [];

const transport = new DefaultChatTransport({
  api: `${base}/v1/chat`,
  fetch: async (url, init) => {
    const response = await fetch(url, init);
    if (init?.method === 'GET') {
      resumes.push(response.status);
      if (response.status === 200) log({ resuming: true });
    }
    return response;
  },
});

const chat = new NodeChat({
  id: chatId,
  transport,
  onData: (part) => {
    if (part.type === 'data-trace') trace.push(part.data);
  },
  onError: (error) => errors.push(String(error)),
});

function summary(message) {
  const text = message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
  const reasoning = message.parts
    .filter((p) => p.type === 'reasoning')
    .map((p) => p.text)
    .join('');
  const data = message.parts.filter((p) => p.type === 'data-recommendations');
  const recommendations = data.length ? Recommendations.parse(data[0].data) : null;
  return {
    id: message.id,
    role: message.role,
    text,
    reasoning,
    recommendationParts: data.length,
    recommendations,
    metadata: message.metadata ?? null,
    partTypes: message.parts.map((p) => p.type),
  };
}

const waitForLine = () =>
  new Promise((resolve) => {
    process.stdin.once('data', (chunk) => resolve(String(chunk).trim()));
  });

await chat.sendMessage({ text: 'a scary film' });
await chat.sendMessage({ text: 'something lighter, a comedy' });
const afterTwoTurns = chat.messages.map(summary);
log({ turns: 2, status: chat.status });

// Third turn: the server's LLM holds the reply until the test releases it.
if ((await waitForLine()) !== 'go') process.exit(2);
const tracedBefore = trace.length;
const sending = chat.sendMessage({ text: 'and a film for the whole family' });
while (trace.length < tracedBefore + 5) await new Promise((r) => setTimeout(r, 20));
await chat.stop(); // useChat's stop(): the connection closes, the reply goes on
await sending;
const cut = summary(chat.messages.at(-1));
await chat.resumeStream(); // GET /v1/chat/{id}/stream: replayed from its start, then live
const resumed = chat.messages.map(summary);
await chat.resumeStream(); // nothing in flight now: 204, nothing changes
const afterNoop = chat.messages.map(summary);

log({
  afterTwoTurns,
  cut,
  resumed,
  unchangedByNoop: JSON.stringify(afterNoop) === JSON.stringify(resumed),
  resumes,
  traced: trace.length,
  traceTypes: [...new Set(trace.map((t) => t.type))],
  errors,
  status: chat.status,
});
process.exit(0);
