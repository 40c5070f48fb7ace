// Lessons are chat (ACADEMY.md §4): a conversation's messages and turns are its chat session's.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Db, Tx } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { idempotencyKeyOf, sendTurn, turnCallerOf } from '../chat/chat.routes.js';
import type { ChatService } from '../chat/chat.service.js';
import type { TurnOptions, TurnService } from '../chat/chat.turns.js';
import { nativeSse } from '../chat/encoders/native.js';
import { streamMetaOf, toMessage } from '../generation/generation.repo.js';
import type { Replies } from '../generation/replies.js';
import type { FinalOutcome } from '../generation/turn.js';
import { type Teacher, TRACKS, XP } from './academy.catalog.js';
import * as repo from './academy.repo.js';
import type { conversationMessagesSchema, lessonAnswerSchema } from './academy.responses.js';
import { type LessonBody, toBadge } from './academy.schemas.js';
import type { AcademyService } from './academy.service.js';
import { award, lockUser } from './ledger.js';

type ConversationMessages = z.output<typeof conversationMessagesSchema>;
type LessonAnswer = z.output<typeof lessonAnswerSchema>;

export interface LessonTurns {
  messages(userId: string, conversationId: string, limit: number): Promise<ConversationMessages>;
  stream(
    request: FastifyRequest,
    reply: FastifyReply,
    userId: string,
    conversationId: string,
    body: LessonBody,
  ): Promise<void>;
  message(
    request: FastifyRequest,
    reply: FastifyReply,
    userId: string,
    conversationId: string,
    body: LessonBody,
  ): Promise<LessonAnswer>;
}

export interface LessonDeps {
  db: Db;
  academy: AcademyService;
  chat: ChatService;
  turns: TurnService;
  replies: Replies;
  heartbeatMs: number;
  onDisconnect: 'continue' | 'cancel';
}

const DIFFICULTY: Record<string, string> = {
  beginner: 'iniciante: explique do zero, sem pressupor experiência',
  easy: 'fácil: conceitos básicos com exemplos simples',
  medium: 'intermediário: pode pressupor o básico da trilha',
  hard: 'avançado: discuta trade-offs e casos difíceis',
  expert: 'especialista: aprofunde, cite limites e alternativas',
};

/** The lesson the teacher gives, appended to the teacher's own persona. */
export function lessonPrompt(
  teacher: Teacher,
  c: { track: string; difficulty: string; topic: string | null },
) {
  const track = TRACKS.find((t) => t.id === c.track)!;
  return [
    '## Aula na Academy do Cidadão.AI',
    `Você é professor(a) na Academy, o programa de formação de contribuidores do Cidadão.AI, com a sua especialidade: ${teacher.specialty}.`,
    `Trilha: ${track.id} (${track.name}: ${track.description}).`,
    `Dificuldade: ${c.difficulty} (${DIFFICULTY[c.difficulty]}).`,
    `Tópico: ${c.topic ?? 'livre, escolhido pelo aluno'}.`,
    'Ensine de forma didática: explique, dê um exemplo, proponha um pequeno exercício e confira o entendimento.',
  ].join('\n');
}

export function createLessons(deps: LessonDeps): LessonTurns {
  const { db, academy, chat } = deps;

  /** Starts the turn into the conversation's session with the teacher fixed and the 2 XP hook. */
  async function start(
    request: FastifyRequest,
    reply: FastifyReply,
    userId: string,
    conversationId: string,
    body: LessonBody,
  ) {
    const { row, teacher } = await academy.lessonConversation(userId, conversationId);
    const options: TurnOptions = {
      fixedAgentId: teacher.name,
      promptSuffix: lessonPrompt(teacher, row),
      completeExtra: { conversation_id: row.id },
      userMetadata: body.metadata,
      // Runs inside the reply's final write: the award commits with the reply or not at all.
      onFinalize: (tx, outcome) => payMessage(tx, userId, row.id, outcome),
    };
    const turn = await deps.turns.start(
      // A lesson is a chat turn: the chat class's rate limit applies to it (admission, one Redis
      // step), answered in the same X-RateLimit headers.
      { ...turnCallerOf(request, reply), userId },
      { message: body.message, session_id: row.session_id, context: undefined },
      idempotencyKeyOf(request),
      options,
    );
    return { turn, row };
  }

  return {
    async messages(userId, conversationId, limit) {
      const conversation = await academy.conversation(userId, conversationId);
      const page = await chat.history({ userId }, conversation.session_id, { limit });
      const paid = await repo.messageAwards(
        db,
        userId,
        page.messages.filter((m) => m.role === 'user').map((m) => m.id),
      );
      return page.messages.map((m) => ({
        id: m.id,
        role: m.role,
        content: m.content,
        status: m.status,
        agent_id: m.agent_id,
        xp_awarded: paid.get(m.id) ?? 0,
        metadata: m.metadata,
        timestamp: m.timestamp,
      }));
    },

    async stream(request, reply, userId, conversationId, body) {
      const { turn } = await start(request, reply, userId, conversationId, body);
      await sendTurn(request, reply, turn, { userId }, deps, nativeSse);
    },

    async message(request, reply, userId, conversationId, body) {
      const { turn, row: conversation } = await start(request, reply, userId, conversationId, body);
      const row = await deps.replies.result(turn.messageId, { userId }, { verified: true });
      if (row.status === 'failed' || row.status === 'interrupted') throw new AppError('GENERATION_FAILED');
      const extra = streamMetaOf(row)?.complete_extra ?? {};
      const message = toMessage(row);
      return {
        id: row.id,
        message_id: row.id,
        user_message_id: row.reply_to,
        session_id: turn.sessionId,
        conversation_id: conversation.id,
        role: 'assistant',
        content: row.content,
        status: row.status,
        agent_id: row.agent_id,
        xp_awarded: Number(extra.xp_awarded ?? 0),
        badges_earned: (extra.badges_earned ?? []) as LessonAnswer['badges_earned'],
        metadata: message.metadata,
        timestamp: message.timestamp,
      };
    },
  };
}

/** The user message's 2 XP, only for a reply that completed; the unique source key pays it once. */
async function payMessage(tx: Tx, userId: string, conversationId: string, outcome: FinalOutcome) {
  if (outcome.status !== 'completed') return { xp_awarded: 0, badges_earned: [] };
  const locked = await lockUser(tx, userId);
  if (!locked) return { xp_awarded: 0, badges_earned: [] };
  const paid = await award(locked, [
    {
      amount: XP.conversationMessage,
      sourceType: 'conversation_message',
      sourceId: outcome.userMessageId,
      conversationId,
      description: 'Mensagem respondida',
    },
  ]);
  return { xp_awarded: paid.xpAwarded, badges_earned: paid.badges.map(toBadge) };
}
