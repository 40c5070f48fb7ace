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
CMD ["node", "dist/src/server.js"]
