// Academy routes (ACADEMY.md §2): thin — auth class, zod schemas, one service call each.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AppError } from '../../errors.js';
import { callerId } from '../../plugins/auth.js';
import * as s from './academy.schemas.js';
import type { AcademyService } from './academy.service.js';
import type { LessonTurns } from './lessons.js';

export interface AcademyRoutesDeps {
  service: AcademyService;
  lessons: LessonTurns;
  maxMessageChars: number;
  /** Route-level rate-limit settings per class (plugins/rate-limit.ts); undefined = none. */
  rateLimit?: (cls: 'chat' | 'read') => Record<string, unknown>;
}

type In<T extends z.ZodType> = z.output<T>;

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

export async function academyRoutes(app: FastifyInstance, deps: AcademyRoutesDeps) {
  const { service, lessons } = deps;
  const limit = (cls: 'chat' | 'read'): Record<string, unknown> => {
    const settings = deps.rateLimit?.(cls);
    return settings ? { rateLimit: settings } : {};
  };
  const pub = { config: limit('read') };
  const mine = { config: limit('read'), onRequest: requireCaller };
  const lessonBody = s.lessonBodySchema(deps.maxMessageChars);

  app.post<{ Body: In<typeof s.enrolBodySchema> }>(
    '/users',
    { ...mine, schema: { body: s.enrolBodySchema } },
    async (request, reply: FastifyReply) =>
      reply.code(201).send(await service.enrol(me(request), request.body)),
  );

  app.get('/users/me', { ...mine, schema: {} }, async (request) => service.profile(me(request)));

  app.get<{ Querystring: In<typeof s.paginationSchema> }>(
    '/users/me/xp-history',
    { ...mine, schema: { querystring: s.paginationSchema } },
    async (request) => service.xpHistory(me(request), request.query),
  );

  app.get<{ Params: In<typeof s.userParamsSchema> }>(
    '/users/:user_id',
    { ...pub, schema: { params: s.userParamsSchema } },
    async (request) => service.profile(request.params.user_id),
  );

  app.get<{ Querystring: In<typeof s.agentsQuerySchema> }>(
    '/agents',
    { ...pub, schema: { querystring: s.agentsQuerySchema } },
    async (request) => service.teachers(request.query.track),
  );

  app.get<{ Params: In<typeof s.agentParamsSchema> }>(
    '/agents/:agent_name',
    { ...pub, schema: { params: s.agentParamsSchema } },
    async (request) => service.teacher(request.params.agent_name),
  );

  app.get('/tracks', { ...pub, schema: {} }, async () => service.tracks());

  app.post<{ Body: In<typeof s.startConversationSchema> }>(
    '/conversations',
    { ...mine, schema: { body: s.startConversationSchema } },
    async (request, reply) =>
      reply.code(201).send(await service.startConversation(me(request), request.body)),
  );

  app.get<{ Querystring: In<typeof s.listConversationsSchema> }>(
    '/conversations',
    { ...mine, schema: { querystring: s.listConversationsSchema } },
    async (request) => service.listConversations(me(request), request.query),
  );

  app.get<{ Params: In<typeof s.conversationParamsSchema> }>(
    '/conversations/:id',
    { ...mine, schema: { params: s.conversationParamsSchema } },
    async (request) => service.conversation(me(request), request.params.id),
  );

  app.get<{ Params: In<typeof s.conversationParamsSchema>; Querystring: In<typeof s.messagesQuerySchema> }>(
    '/conversations/:id/messages',
    {
      ...mine,
      schema: {
        params: s.conversationParamsSchema,
        querystring: s.messagesQuerySchema,
      },
    },
    async (request) => lessons.messages(me(request), request.params.id, request.query.limit),
  );

  app.post<{ Params: In<typeof s.conversationParamsSchema>; Body: s.LessonBody }>(
    '/conversations/:id/messages/stream',
    {
      config: limit('chat'),
      onRequest: requireCaller,
      schema: { params: s.conversationParamsSchema, body: lessonBody },
    },
    async (request, reply) => lessons.stream(request, reply, me(request), request.params.id, request.body),
  );

  app.post<{ Params: In<typeof s.conversationParamsSchema>; Body: s.LessonBody }>(
    '/conversations/:id/messages',
    {
      config: limit('chat'),
      onRequest: requireCaller,
      schema: { params: s.conversationParamsSchema, body: lessonBody },
    },
    async (request) => lessons.message(request, me(request), request.params.id, request.body),
  );

  app.post<{ Params: In<typeof s.conversationParamsSchema>; Body?: In<typeof s.completeConversationSchema> }>(
    '/conversations/:id/complete',
    {
      ...mine,
      schema: {
        params: s.conversationParamsSchema,
        body: optionalBody(s.completeConversationSchema),
      },
    },
    async (request) => service.completeConversation(me(request), request.params.id, request.body ?? {}),
  );

  app.get<{ Querystring: In<typeof s.listMissionsSchema> }>(
    '/missions',
    { ...pub, schema: { querystring: s.listMissionsSchema } },
    async (request) => service.missions(request.query),
  );

  // Declared as a static path, so it always wins over /missions/:mission_id.
  app.get<{ Querystring: In<typeof s.myMissionsSchema> }>(
    '/missions/me',
    { ...mine, schema: { querystring: s.myMissionsSchema } },
    async (request) => service.myMissions(me(request), request.query.status),
  );

  app.get<{ Params: In<typeof s.missionParamsSchema> }>(
    '/missions/:mission_id',
    { ...pub, schema: { params: s.missionParamsSchema } },
    async (request) => service.mission(request.params.mission_id),
  );

  app.post<{ Params: In<typeof s.missionParamsSchema> }>(
    '/missions/:mission_id/start',
    { ...mine, schema: { params: s.missionParamsSchema } },
    async (request, reply) =>
      reply.code(201).send(await service.startMission(me(request), request.params.mission_id)),
  );

  app.post<{ Params: In<typeof s.missionParamsSchema>; Body?: In<typeof s.completeMissionSchema> }>(
    '/missions/:mission_id/complete',
    {
      ...mine,
      schema: {
        params: s.missionParamsSchema,
        body: optionalBody(s.completeMissionSchema),
      },
    },
    async (request) => service.completeMission(me(request), request.params.mission_id, request.body ?? {}),
  );

  app.get<{ Querystring: In<typeof s.badgesQuerySchema> }>(
    '/badges',
    { ...pub, schema: { querystring: s.badgesQuerySchema } },
    async (request) => service.badges(request.query),
  );

  app.get('/badges/me', { ...mine, schema: {} }, async (request) => service.myBadges(me(request)));

  app.get<{ Querystring: In<typeof s.leaderboardSchema> }>(
    '/leaderboard',
    { ...pub, schema: { querystring: s.leaderboardSchema } },
    async (request) => service.leaderboard(request.query),
  );

  app.get<{ Querystring: In<typeof s.myRankSchema> }>(
    '/leaderboard/me',
    { ...mine, schema: { querystring: s.myRankSchema } },
    async (request) => service.myRank(me(request), request.query.period),
  );

  app.get('/stats', { ...pub, schema: {} }, async () => service.stats());

  app.get('/stats/me', { ...mine, schema: {} }, async (request) => service.myStats(me(request)));
}
