# One image for both processes:
#   orchestrator (default):  node dist/src/main.js
#   node agent:              node dist/src/agent/main.js   (set FEM_NODE_ID; see docker-compose.yml)
# Builds with the classic builder as well as BuildKit (no BuildKit-only syntax).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The root install's postinstall installs the dashboard's own dependencies (web/).
COPY web/package.json web/package-lock.json ./web/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    FEM_SANDBOX_DIR=/var/lib/fem/sandbox
WORKDIR /app
# Application files stay owned by root: the processes read them, never write them.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/migrations ./dist/migrations
COPY --from=build /app/web/dist ./web/dist
# The agent's journal and run sandboxes; a volume mounted here inherits this ownership.
RUN mkdir -p /var/lib/fem/sandbox && chown -R node:node /var/lib/fem
USER node
EXPOSE 4000
# A larger young generation: a request's garbage dies young instead of being promoted (docs/performance.md).
CMD ["node", "--max-semi-space-size=32", "dist/src/main.js"]
