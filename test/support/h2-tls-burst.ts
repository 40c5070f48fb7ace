// Runs in its own process (NODE_EXTRA_CA_CERTS is read at start): N concurrent replies from an
// HTTP/2 provider over https, printed as one JSON array of their texts (an error's message instead).
import { createOpenAIProvider } from '../../src/modules/llm/openai.js';

const [baseUrl, count] = [process.argv[2]!, Number(process.argv[3])];
const provider = createOpenAIProvider({
  baseUrl,
  apiKey: 'sk-test',
  model: 'm',
  agentModels: {},
  connectTimeoutMs: 5000,
  idleTimeoutMs: 5000,
  http2: true,
  log: { warn() {}, debug() {} } as never,
});

async function reply(): Promise<string> {
  let text = '';
  try {
    for await (const ev of provider.stream({
      model: 'm',
      messages: [{ role: 'user', content: 'oi' }],
      signal: new AbortController().signal,
    })) {
      if (ev.type === 'token') text += ev.text;
    }
    return text;
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

const texts = await Promise.all(Array.from({ length: count }, reply));
process.stdout.write(`${JSON.stringify(texts)}\n`);
process.exit(0);
