// Academy routes (ACADEMY.md §2): thin — auth class, zod schemas, one service call each.
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { callerId } from '../../plugins/auth.js';
import { eventStreamSchema } from '../chat/chat.schemas.js';
import * as r from './academy.responses.js';
import * as s from './academy.schemas.js';
import type { AcademyService } from './academy.service.js';
import type { LessonTurns } from './lessons.js';

export interface AcademyRoutesDeps {
  service: AcademyService;
  lessons: LessonTurns;
  maxMessageChars: number;
}

/** "me" routes need a verified caller: no token is a 401 that tells the client to send one. */
async function requireCaller(request: FastifyRequest) {
  if (!callerId(request)) {
    throw new AppError('UNAUTHORIZED', 'Authentication required.', undefined, {
      'www-authenticate': 'Bearer',
    });
  }
}

// Only reached after requireCaller, so the sub is there.
const me = (request: FastifyRequest) => callerId(request)!;

// An empty or absent body on a body-optional POST is "no body" (axios sends one on body-less POSTs).
const optionalBody = <T extends z.ZodType>(schema: T) => schema.optional();
const keyHeaders = z.looseObject({ 'idempotency-key': z.string().optional() });

export const academyRoutes: FastifyPluginAsyncZod<AcademyRoutesDeps> = async (app, deps) => {
  const { service, lessons } = deps;
  const pub = { config: { rateLimitClass: 'read' as const } };
  const mine = { config: { rateLimitClass: 'read' as const }, onRequest: requireCaller };
  const lessonBody = s.lessonBodySchema(deps.maxMessageChars);

  app.post(
    '/users',
    { ...mine, schema: { body: s.enrolBodySchema, response: { 201: r.academyUserSchema } } },
    async (request, reply) => reply.code(201).send(await service.enrol(me(request), request.body)),
  );

  app.get('/users/me', { ...mine, schema: { response: { 200: r.academyUserSchema } } }, async (request) =>
    service.profile(me(request)),
  );

  app.get(
    '/users/me/xp-history',
    { ...mine, schema: { querystring: s.paginationSchema, response: { 200: r.xpHistorySchema } } },
    async (request) => service.xpHistory(me(request), request.query),
  );

  app.get(
    '/users/:user_id',
    { ...pub, schema: { params: s.userParamsSchema, response: { 200: r.academyUserSchema } } },
    async (request) => service.profile(request.params.user_id),
  );

  app.get(
    '/agents',
    { ...pub, schema: { querystring: s.agentsQuerySchema, response: { 200: z.array(r.teacherSchema) } } },
    async (request) => service.teachers(request.query.track),
  );

  app.get(
    '/agents/:agent_name',
    { ...pub, schema: { params: s.agentParamsSchema, response: { 200: r.teacherSchema } } },
    async (request) => service.teacher(request.params.agent_name),
  );

  app.get('/tracks', { ...pub, schema: { response: { 200: r.tracksSchema } } }, async () => service.tracks());

  app.post(
    '/conversations',
    { ...mine, schema: { body: s.startConversationSchema, response: { 201: r.conversationAwardSchema } } },
    async (request, reply) =>
      reply.code(201).send(await service.startConversation(me(request), request.body)),
  );

  app.get(
    '/conversations',
    {
      ...mine,
      schema: { querystring: s.listConversationsSchema, response: { 200: z.array(r.conversationSchema) } },
    },
    async (request) => service.listConversations(me(request), request.query),
  );

  app.get(
    '/conversations/:id',
    { ...mine, schema: { params: s.conversationParamsSchema, response: { 200: r.conversationSchema } } },
    async (request) => service.conversation(me(request), request.params.id),
  );

  app.get(
    '/conversations/:id/messages',
    {
      ...mine,
      schema: {
        params: s.conversationParamsSchema,
        querystring: s.messagesQuerySchema,
        response: { 200: r.conversationMessagesSchema },
      },
    },
    async (request) => lessons.messages(me(request), request.params.id, request.query.limit),
  );

  app.post(
    '/conversations/:id/messages/stream',
    {
      config: { rateLimitClass: 'chat' },
      onRequest: requireCaller,
      schema: {
        params: s.conversationParamsSchema,
        body: lessonBody,
        headers: keyHeaders,
        response: { 200: eventStreamSchema },
      },
    },
    async (request, reply) => lessons.stream(request, reply, me(request), request.params.id, request.body),
  );

  app.post(
    '/conversations/:id/messages',
    {
      config: { rateLimitClass: 'chat' },
      onRequest: requireCaller,
      schema: {
        params: s.conversationParamsSchema,
        body: lessonBody,
        headers: keyHeaders,
        response: { 200: r.lessonAnswerSchema },
      },
    },
    async (request, reply) => lessons.message(request, reply, me(request), request.params.id, request.body),
  );

  app.post(
    '/conversations/:id/complete',
    {
      ...mine,
      schema: {
        params: s.conversationParamsSchema,
        body: optionalBody(s.completeConversationSchema),
        response: { 200: r.conversationAwardSchema },
      },
    },
    async (request) => service.completeConversation(me(request), request.params.id, request.body ?? {}),
  );

  app.get(
    '/missions',
    { ...pub, schema: { querystring: s.listMissionsSchema, response: { 200: z.array(r.missionSchema) } } },
    async (request) => service.missions(request.query),
  );

  // Declared as a static path, so it always wins over /missions/:mission_id.
  app.get(
    '/missions/me',
    { ...mine, schema: { querystring: s.myMissionsSchema, response: { 200: z.array(r.userMissionSchema) } } },
    async (request) => service.myMissions(me(request), request.query.status),
  );

  app.get(
    '/missions/:mission_id',
    { ...pub, schema: { params: s.missionParamsSchema, response: { 200: r.missionSchema } } },
    async (request) => service.mission(request.params.mission_id),
  );

  app.post(
    '/missions/:mission_id/start',
    { ...mine, schema: { params: s.missionParamsSchema, response: { 201: r.userMissionSchema } } },
    async (request, reply) =>
      reply.code(201).send(await service.startMission(me(request), request.params.mission_id)),
  );

  app.post(
    '/missions/:mission_id/complete',
    {
      ...mine,
      schema: {
        params: s.missionParamsSchema,
        body: optionalBody(s.completeMissionSchema),
        response: { 200: r.userMissionAwardSchema },
      },
    },
    async (request) => service.completeMission(me(request), request.params.mission_id, request.body ?? {}),
  );

  app.get(
    '/badges',
    { ...pub, schema: { querystring: s.badgesQuerySchema, response: { 200: z.array(r.badgeSchema) } } },
    async (request) => service.badges(request.query),
  );

  app.get(
    '/badges/me',
    { ...mine, schema: { response: { 200: z.array(r.earnedBadgeSchema) } } },
    async (request) => service.myBadges(me(request)),
  );

  app.get(
    '/leaderboard',
    { ...pub, schema: { querystring: s.leaderboardSchema, response: { 200: r.leaderboardSchema } } },
    async (request) => service.leaderboard(request.query),
  );

  app.get(
    '/leaderboard/me',
    { ...mine, schema: { querystring: s.myRankSchema, response: { 200: r.myRankSchema } } },
    async (request) => service.myRank(me(request), request.query.period),
  );

  app.get('/stats', { ...pub, schema: { response: { 200: r.statsSchema } } }, async () => service.stats());

  app.get('/stats/me', { ...mine, schema: { response: { 200: r.myStatsSchema } } }, async (request) =>
    service.myStats(me(request)),
  );
};
