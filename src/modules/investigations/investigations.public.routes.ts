// The frontend's investigation pages (API.md §6.1): create, status and results as thin routes over the same service.
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../errors.js';
import { callerId } from '../../plugins/auth.js';
import { cacheControlFor, publicResults, publicStatus } from './investigations.public.js';
import type { InvestigationRow } from './investigations.repo.js';
import {
  type createBodySchema,
  idParamsSchema,
  publicCreatedResponseSchema,
  publicResultsResponseSchema,
  publicStatusResponseSchema,
} from './investigations.schemas.js';
import type { InvestigationService } from './investigations.service.js';

export interface PublicRoutesOptions {
  service: InvestigationService;
  bodySchema: ReturnType<typeof createBodySchema>;
  bodyLimit: number;
}

function cacheable(reply: FastifyReply, row: InvestigationRow) {
  reply.header('cache-control', cacheControlFor(row));
  // The answer depends on who asks (an upload is owner-only).
  reply.header('vary', 'Authorization, Origin');
}

export const publicInvestigationRoutes: FastifyPluginAsyncZod<PublicRoutesOptions> = async (app, opts) => {
  const { service } = opts;

  app.post(
    '/public/create',
    {
      bodyLimit: opts.bodyLimit,
      config: { rateLimitClass: 'investigations' },
      schema: {
        operationId: 'createInvestigationPublic',
        body: opts.bodySchema,
        response: { 202: publicCreatedResponseSchema },
      },
    },
    async (request, reply) => {
      const created = await service.create(callerId(request), request.body);
      return reply.code(202).send({
        investigation_id: created.investigation_id,
        status: created.status,
        message: created.sample_data
          ? 'Investigação criada. Sem chave do Portal da Transparência, ela usa dados de exemplo.'
          : 'Investigação criada; acompanhe o andamento pela página da investigação.',
        sample_data: created.sample_data,
      });
    },
  );

  app.get(
    '/public/status/:id',
    {
      config: { rateLimitClass: 'poll' },
      schema: {
        operationId: 'getInvestigationPublicStatus',
        params: idParamsSchema,
        response: { 200: publicStatusResponseSchema },
      },
    },
    async (request, reply) => {
      const { row } = await service.sharedView(callerId(request), request.params.id, false);
      cacheable(reply, row);
      return publicStatus(row);
    },
  );

  app.get(
    '/public/results/:id',
    {
      config: { rateLimitClass: 'poll' },
      schema: {
        operationId: 'getInvestigationPublicResults',
        params: idParamsSchema,
        response: { 200: publicResultsResponseSchema },
      },
    },
    async (request, reply) => {
      const { row, findings } = await service.sharedView(callerId(request), request.params.id, true);
      if (row.status === 'pending' || row.status === 'running') {
        reply.header('cache-control', 'no-store');
        throw new AppError('INVESTIGATION_RUNNING', undefined, publicStatus(row)).withDetail(
          'A investigação ainda está em andamento; os resultados aparecem quando ela terminar.',
        );
      }
      cacheable(reply, row);
      return publicResults(row, findings);
    },
  );
};
