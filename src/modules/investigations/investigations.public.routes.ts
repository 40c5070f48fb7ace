// The frontend's investigation pages (API.md §6.1): create, status and results as thin routes over the same service.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodType } from 'zod';
import { AppError } from '../../errors.js';
import { callerId } from '../../plugins/auth.js';
import { cacheControlFor, publicResults, publicStatus } from './investigations.public.js';
import type { InvestigationRow } from './investigations.repo.js';
import { type CreateBody, idParamsSchema } from './investigations.schemas.js';
import type { InvestigationService } from './investigations.service.js';

export interface PublicRoutesOptions {
  service: InvestigationService;
  bodySchema: ZodType<CreateBody>;
  bodyLimit: number;
  limit: (cls: 'investigations' | 'poll') => Record<string, unknown>;
}

function cacheable(reply: FastifyReply, row: InvestigationRow) {
  reply.header('cache-control', cacheControlFor(row));
  // The answer depends on who asks (an upload is owner-only).
  reply.header('vary', 'Authorization, Origin');
}

export async function publicInvestigationRoutes(app: FastifyInstance, opts: PublicRoutesOptions) {
  const { service } = opts;

  app.post(
    '/public/create',
    {
      bodyLimit: opts.bodyLimit,
      config: opts.limit('investigations'),
      schema: { operationId: 'createInvestigationPublic', body: opts.bodySchema },
    },
    async (request, reply) => {
      const created = await service.create(callerId(request), request.body as CreateBody);
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
      config: opts.limit('poll'),
      schema: { operationId: 'getInvestigationPublicStatus', params: idParamsSchema },
    },
    async (request, reply) => {
      const { id } = request.params as ReturnType<typeof idParamsSchema.parse>;
      const { row } = await service.sharedView(callerId(request), id, false);
      cacheable(reply, row);
      return publicStatus(row);
    },
  );

  app.get(
    '/public/results/:id',
    {
      config: opts.limit('poll'),
      schema: { operationId: 'getInvestigationPublicResults', params: idParamsSchema },
    },
    async (request, reply) => {
      const { id } = request.params as ReturnType<typeof idParamsSchema.parse>;
      const { row, findings } = await service.sharedView(callerId(request), id, true);
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
}
