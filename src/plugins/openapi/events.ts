// The SSE event unions (API.md §1.2, §6) as zod schemas, for the OpenAPI document's text/event-stream responses.
import { z } from 'zod';
import { ANOMALY_TYPES } from '../../modules/investigations/types.js';

const usage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  estimated: z.boolean(),
});

// Loose objects: the wire may carry fields added later; clients must ignore what they do not know.
const event = <T extends string, S extends z.ZodRawShape>(type: T, shape: S, description: string) =>
  z.looseObject({ type: z.literal(type), ...shape }).describe(description);

export const chatEventSchema = z
  .discriminatedUnion('type', [
    event(
      'start',
      {
        session_id: z.string(),
        message_id: z.string(),
        user_message_id: z.string(),
        timestamp: z.string(),
      },
      'Always first; sent as soon as the turn is stored.',
    ),
    event('detecting', { message: z.string() }, 'Reading the message (Portuguese status line).'),
    event('intent', { intent: z.string(), confidence: z.number().min(0).max(1) }, 'The detected intent.'),
    event('agent_selected', { agent_id: z.string(), agent_name: z.string() }, 'Before the first chunk.'),
    event('thinking', { message: z.string() }, 'While waiting on the model or a tool.'),
    event('searching', { message: z.string(), query: z.string().optional() }, 'Contract search started.'),
    event(
      'found',
      { message: z.string(), count: z.number().int(), sample_data: z.boolean().optional() },
      'Contract search finished.',
    ),
    event('contract', { data: z.record(z.string(), z.unknown()) }, 'One contract found by the search.'),
    event(
      'chunk',
      { content: z.string().min(1), agent_id: z.string() },
      'Reply text; the concatenation of all chunks is the stored reply, byte for byte.',
    ),
    event(
      'complete',
      {
        session_id: z.string(),
        message_id: z.string(),
        agent_id: z.string(),
        agent_name: z.string(),
        finish_reason: z.string(),
        suggested_actions: z.array(z.string()),
        usage,
      },
      'Exactly once, last, on success (also after a stop, with finish_reason "stopped").',
    ),
    event(
      'error',
      { message: z.string(), code: z.string(), fallback_endpoint: z.string().optional() },
      'Last, on failure after the stream began.',
    ),
  ])
  .describe(
    'The JSON of each `data:` line. Framing: an `id: <cursor>` line, one `data:` line, a blank line; `: ping` comment lines while idle. Resume with `Last-Event-ID` or `?after=<cursor>`.',
  );

export const investigationEventSchema = z
  .discriminatedUnion('type', [
    event(
      'progress',
      {
        investigation_id: z.string(),
        status: z.enum(['pending', 'running', 'completed', 'failed', 'cancelled']),
        current_phase: z.string(),
        progress: z.number().min(0).max(1),
        records_processed: z.number().int(),
        anomalies_detected: z.number().int(),
        sample_data: z.boolean(),
        timestamp: z.string(),
      },
      'Progress (never decreasing).',
    ),
    event(
      'anomaly',
      {
        investigation_id: z.string(),
        sample_data: z.boolean(),
        finding: z.looseObject({
          id: z.string(),
          type: z.enum(ANOMALY_TYPES),
          severity: z.number().min(0).max(1),
          confidence: z.number().min(0).max(1),
          title: z.string(),
          explanation: z.string(),
          contract_ids: z.array(z.string()),
          evidence: z.record(z.string(), z.unknown()),
        }),
      },
      'One finding, as soon as it is stored.',
    ),
    event(
      'completion',
      {
        investigation_id: z.string(),
        status: z.enum(['completed', 'failed', 'cancelled']),
        records_analyzed: z.number().int(),
        anomalies_found: z.number().int(),
        confidence: z.number().nullable(),
        summary: z.string().nullable(),
        error: z.string().nullable(),
        sample_data: z.boolean(),
        completed_at: z.string().nullable(),
        processing_time_ms: z.number().int().nullable(),
        timestamp: z.string(),
      },
      'Last; the server then closes the stream.',
    ),
  ])
  .describe(
    'The JSON of each `data:` line (`id: <cursor>` line, one `data:` line, blank line). Resume with `Last-Event-ID` or `?after=<cursor>`.',
  );

export const errorEnvelopeSchema = z
  .object({
    error: z.object({
      code: z.string().describe('Machine-readable, e.g. SESSION_NOT_FOUND, VALIDATION_ERROR, RATE_LIMITED'),
      message: z.string(),
      details: z.unknown().optional(),
    }),
    detail: z.string().optional().describe('The same user-presentable message, for axios-style clients'),
    request_id: z.string(),
  })
  .describe('Every error: the code, a readable message, details (e.g. validation issues), the request id.');
