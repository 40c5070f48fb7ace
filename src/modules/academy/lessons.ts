// Lessons are chat (ACADEMY.md §4): a conversation's messages and turns are its chat session's.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../../db/client.js';
import type { ChatService } from '../chat/chat.service.js';
import * as repo from './academy.repo.js';
import type { LessonBody } from './academy.schemas.js';
import type { AcademyService } from './academy.service.js';

export interface LessonTurns {
  messages(userId: string, conversationId: string, limit: number): Promise<unknown[]>;
  stream(
    request: FastifyRequest,
    reply: FastifyReply,
    userId: string,
    conversationId: string,
    body: LessonBody,
  ): Promise<void>;
  message(
    request: FastifyRequest,
    userId: string,
    conversationId: string,
    body: LessonBody,
  ): Promise<unknown>;
}

export interface LessonDeps {
  db: Db;
  academy: AcademyService;
  chat: ChatService;
}

export function createLessons(deps: LessonDeps): LessonTurns {
  const { db, academy, chat } = deps;

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

    async stream(_request, _reply, userId, conversationId) {
      await academy.lessonConversation(userId, conversationId);
      throw new Error('not wired yet');
    },

    async message(_request, userId, conversationId) {
      await academy.lessonConversation(userId, conversationId);
      throw new Error('not wired yet');
    },
  };
}
