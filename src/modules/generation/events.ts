// Generation events and their cursors: `<content offset>-<seq>`, valid both in memory and as Redis stream ids.

export interface GenEvent {
  type: string;
  [field: string]: unknown;
}

export interface StreamEntry {
  /** The SSE `id:` and Redis stream entry id. */
  id: string;
  /** 1-based position in the generation's event sequence. */
  seq: number;
  /** Characters of reply content emitted up to and including this event. */
  offset: number;
  event: GenEvent;
}

export interface Cursor {
  offset: number;
  seq: number;
}

/*
 * The offset in the cursor is what makes resume exact after the live log is gone: a rebuild from
 * the stored message can cut the content at the client's offset even though it no longer knows
 * how the original chunks were split. (offset, seq) also increases strictly, as Redis requires.
 */
export function cursorId(offset: number, seq: number): string {
  return `${offset}-${seq}`;
}

export function parseCursor(raw: string | undefined | null): Cursor | null {
  if (!raw) return null;
  const m = /^(\d{1,15})-(\d{1,15})$/.exec(raw.trim());
  if (!m) return null;
  return { offset: Number(m[1]), seq: Number(m[2]) };
}

export const TERMINAL_TYPES = new Set(['complete', 'error']);

export function isTerminal(event: GenEvent): boolean {
  return TERMINAL_TYPES.has(event.type);
}

export interface CompleteFields {
  sessionId: string;
  messageId: string;
  /** The agent id the client asked for (the frontend keys on it), else the canonical one. */
  agentId: string;
  agentName: string;
  finishReason: string;
  suggestedActions: string[];
  usage: { prompt_tokens: number; completion_tokens: number; estimated: boolean };
  /** Extra fields of the contract-search path (contracts, total_contracts, …). */
  extra?: Record<string, unknown>;
}

/** The one `complete` event of a successful (or stopped) reply, live or rebuilt. */
export function completeEvent(f: CompleteFields): GenEvent {
  return {
    type: 'complete',
    session_id: f.sessionId,
    message_id: f.messageId,
    agent_id: f.agentId,
    agent_name: f.agentName,
    finish_reason: f.finishReason,
    suggested_actions: f.suggestedActions,
    usage: f.usage,
    ...f.extra,
  };
}

const ERROR_MESSAGES = {
  interrupted: 'A resposta foi interrompida. Tente novamente em instantes.',
  failed: 'Não foi possível concluir a resposta agora. Tente novamente em instantes.',
};

/** The `error` event that ends a failed or interrupted reply, live or rebuilt. */
export function errorEvent(status: 'failed' | 'interrupted', code?: string): GenEvent {
  return {
    type: 'error',
    message: ERROR_MESSAGES[status],
    code: status === 'interrupted' ? 'GENERATION_INTERRUPTED' : (code ?? 'GENERATION_FAILED'),
    fallback_endpoint: '/api/v1/chat/message',
  };
}
