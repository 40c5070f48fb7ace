# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and compiled JS only; no tsx, no compiler.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
RUN mkdir -p /app/.data && chown -R node:node /app/.data
USER node
EXPOSE 3000
# tini is PID 1: it forwards SIGTERM to node and reaps zombies. railway.json sets no
# startCommand on purpose: Railway's startCommand replaces this ENTRYPOINT, and tini with it.
# Without DATABASE_URL this image refuses to start (NODE_ENV=production) unless EMBEDDED=true.
ENTRYPOINT ["/usr/bin/tini", "--"]
# --max-semi-space-size=8: V8's young generation pinned small. Node 24 sizes it from the memory
# limit (64 MiB semi-spaces on a 4 GiB heap), which held 10k live replies at 627 MB RSS and an idle
# server at 235 MB; 16 MiB (Node 20's own size) held them at 456-509 and 153-161 (seventh
# session), 8 MiB saves another 16 MB of committed young space. CPU per chat turn did not
# measurably change between 8, 16 and 64 (bench/RESULTS.md, eighth session). `npm start` and
# `npm run bench` use the same flags (bench/targets.ts reads them from this line).
CMD ["node", "--max-semi-space-size=8", "dist/src/server.js"]
