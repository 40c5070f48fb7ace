// Types for the undici module the model client loads on its own (see openai.ts): the same
// class the package's index exports, which loads all of undici (fetch, WebSocket, caches…).
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici';

  const AgentClass: typeof Agent;
  export default AgentClass;
}
