// The reply's event vocabulary (API.md §1.2), its cursors, and the ONE place every event is built.

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  /** True when the provider reported no usage and the numbers are estimates. */
  estimated: boolean;
}

/** `contract.data` of API.md §1.2. */
export interface ContractData {
  id: string;
  numero: string | null;
  objeto: string;
  valor: number;
  valor_formatado: string;
  fornecedor: string;
  cnpj_fornecedor: string | null;
  orgao: string;
  data_assinatura: string | null;
  vigencia_inicio: string | null;
  vigencia_fim: string | null;
  situacao: string | null;
  modalidade: string | null;
  processo: string | null;
}

export interface StartEvent {
  type: 'start';
  session_id: string;
  message_id: string;
  user_message_id: string | null;
  timestamp: string;
}
export interface ChunkEvent {
  type: 'chunk';
  content: string;
  agent_id: string;
}
/**
 * Fields beyond the fixed ones: the contract path (`contracts`, `total_contracts`,
 * `download_available`, `sample_data`, `investigation_id`) and extensions (the academy's
 * `xp_awarded`, `badges_earned`, `conversation_id`). Stored with the row so a rebuild repeats them.
 */
export type CompleteExtra = Record<string, unknown>;
export interface CompleteEvent {
  type: 'complete';
  session_id: string;
  message_id: string;
  agent_id: string;
  agent_name: string;
  finish_reason: string;
  suggested_actions: string[];
  usage: Usage;
  [extra: string]: unknown;
}
export interface ErrorEvent {
  type: 'error';
  message: string;
  code: string;
  fallback_endpoint?: string;
}

/** Events between `start` and the first chunk: progress the client shows while it waits. */
export type PreludeEvent =
  | { type: 'detecting'; message: string }
  | { type: 'intent'; intent: string; confidence: number }
  | { type: 'agent_selected'; agent_id: string; agent_name: string }
  | { type: 'thinking'; message: string }
  | { type: 'searching'; message: string; query: string }
  | { type: 'found'; message: string; count: number; sample_data: boolean }
  | { type: 'contract'; data: ContractData };

export type ReplyEvent = StartEvent | PreludeEvent | ChunkEvent | CompleteEvent | ErrorEvent;
export type TerminalEvent = CompleteEvent | ErrorEvent;

export interface StreamEntry {
  /** The cursor: the SSE `id:` and the Redis stream entry id. */
  id: string;
  /** 1-based position in the reply's event sequence. */
  seq: number;
  /** Characters of reply content emitted up to and including this event. */
  offset: number;
  event: ReplyEvent;
}

export interface Cursor {
  offset: number;
  seq: number;
}

/*
 * Cursors are `<content offset>-<seq>`. The offset is what makes resume exact after the live log
 * is gone: a rebuild from the stored message can cut the content at the client's offset even
 * though it no longer knows how the original chunks were split. (offset, seq) also increases
 * strictly, as Redis stream ids must.
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

export function isTerminal(event: ReplyEvent): event is TerminalEvent {
  return event.type === 'complete' || event.type === 'error';
}

export function startEvent(f: {
  sessionId: string;
  messageId: string;
  userMessageId: string | null;
  startedAt: Date | string;
}): StartEvent {
  return {
    type: 'start',
    session_id: f.sessionId,
    message_id: f.messageId,
    user_message_id: f.userMessageId,
    timestamp: new Date(f.startedAt).toISOString(),
  };
}

export function chunkEvent(content: string, agentId: string): ChunkEvent {
  return { type: 'chunk', content, agent_id: agentId };
}

export interface CompleteFields {
  sessionId: string;
  messageId: string;
  /** The agent id the client asked for (the frontend keys on it), else the canonical one. */
  agentId: string;
  agentName: string;
  finishReason: string;
  suggestedActions: string[];
  usage: Usage;
  extra?: CompleteExtra;
}

/** The one `complete` event of a successful (or stopped) reply, live or rebuilt. */
export function completeEvent(f: CompleteFields): CompleteEvent {
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
export function errorEvent(status: 'failed' | 'interrupted', code?: string): ErrorEvent {
  return {
    type: 'error',
    message: ERROR_MESSAGES[status],
    code: status === 'interrupted' ? 'GENERATION_INTERRUPTED' : (code ?? 'GENERATION_FAILED'),
    fallback_endpoint: '/api/v1/chat/message',
  };
}

/** The `error` a subscriber writes when reading the reply itself failed (not the reply's own end). */
export function streamFailedEvent(): ErrorEvent {
  return {
    type: 'error',
    message: 'A transmissão foi interrompida. Tente novamente.',
    code: 'STREAM_FAILED',
    fallback_endpoint: '/api/v1/chat/message',
  };
}

// Chunk text is cut at whitespace: the frontend joins chunks with a space unless one ends in whitespace.
export interface Chunker {
  /** Adds text; returns the part up to and including the last whitespace, or '' to hold it all back. */
  push(text: string): string;
  /** The held-back tail (the last chunk may end without whitespace). */
  flush(): string;
}

const WS = /\s/;

/** A class, not closures: one object per live reply instead of two functions and their context. */
class WordChunker implements Chunker {
  private pending = '';

  push(text: string): string {
    this.pending += text;
    const pending = this.pending;
    let cut = pending.length;
    while (cut > 0 && !WS.test(pending[cut - 1]!)) cut--;
    if (cut === 0) return '';
    this.pending = pending.slice(cut);
    return pending.slice(0, cut);
  }

  flush(): string {
    const out = this.pending;
    this.pending = '';
    return out;
  }
}

export function createChunker(): Chunker {
  return new WordChunker();
}
