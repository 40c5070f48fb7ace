// The contract of a reply with its turn, its pipeline and its extensions: inputs, pipeline events, the finalize hook.
import type { Tx } from '../../db/client.js';
import type { ModelEvent } from '../llm/provider.js';
import type { CompleteExtra, PreludeEvent, Usage } from './events.js';
import type { FinalStatus } from './generation.repo.js';

/** What a turn asks of its reply; the pipeline reads it. */
export interface TurnInput {
  message: string;
  requestedAgentId?: string;
  sessionId: string;
  userId: string | null;
  /** The user message's position; history is what came before it. */
  userSeq: number;
  context: Record<string, unknown> | null;
  /** Answer as this agent: no intent routing, no contract search (the academy's teacher). */
  fixedAgentId?: string;
  /** Appended to the agent's system prompt (the academy's lesson context). */
  promptSuffix?: string;
}

/** What routing decided; the producer stores it with the reply. */
export interface RoutedTurn {
  agent: { id: string; name: string; echoId: string };
  intent: { intent: string; confidence: number };
  suggestedActions: string[];
}

/**
 * What the pipeline tells the producer, in order. It shares no mutable state with it: facts
 * (`routed`, `extra`, the model name) arrive as typed events like the progress events.
 */
export type PipelineEvent =
  /** A progress event for the client (logged and streamed). */
  | { type: 'event'; event: PreludeEvent }
  /** The agent and intent, as soon as routing decided them (before anything that can fail). */
  | ({ type: 'routed' } & RoutedTurn)
  /** Extra fields for `complete` (the contract-search path); later ones add to earlier ones. */
  | { type: 'extra'; fields: CompleteExtra }
  | ModelEvent
  /** The model's own token/done stream, last: the consumer reads it directly, one hop less per token. */
  | { type: 'model'; model: string; stream: AsyncIterable<ModelEvent> };

export type Pipeline = (input: TurnInput, signal: AbortSignal) => AsyncIterable<PipelineEvent>;

/** What the final write stores, as the finalize hook and `onFinished` see it. */
export interface FinalOutcome {
  messageId: string;
  userMessageId: string;
  sessionId: string;
  userId: string | null;
  status: FinalStatus;
  content: string;
  finishReason: string;
  agentId: string;
  agentName: string;
  intent: string | null;
  confidence: number | null;
  usage: Usage;
}

/**
 * Runs inside the transaction of the final write, before the row's UPDATE, for every final
 * status. Statements on `tx` commit with the reply or not at all (not when the row was already
 * final); the fields it returns go into `complete` and are stored with the row.
 */
export type FinalizeHook = (tx: Tx, outcome: FinalOutcome) => Promise<CompleteExtra | undefined>;

/** Per-turn options: how another module (the academy) runs a chat turn. */
export interface ReplyOptions {
  fixedAgentId?: string;
  promptSuffix?: string;
  onFinalize?: FinalizeHook;
  /** Fixed extra fields of `complete` (e.g. `conversation_id`). */
  completeExtra?: CompleteExtra;
}
