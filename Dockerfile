# Shutter as a container (Knative, Cloud Run, any Kubernetes): the bundled function behind its Node HTTP entry.
#   docker build -t shutter . && docker run -p 8080:8080 --env-file .env shutter
# The runtime image holds the bundle only (dist/functions: no node_modules, no native binaries).

FROM node:24-bookworm-slim AS build
WORKDIR /app
# Installing runs `prisma generate` (postinstall), which needs the Prisma schema and config.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app
# Owned by root: the server (uid 1000) reads its code and writes nothing next to it.
COPY --from=build /app/dist/functions ./
# V8's compile cache, made again by this image's own Node.js (the build's may be another version; a cache is only
# valid for the Node.js that made it): a cold start deserializes compiled code instead of compiling it.
COPY --from=build /app/scripts/compile-cache.ts /tmp/compile-cache.ts
RUN rm -rf compile-cache && node /tmp/compile-cache.ts /app && rm /tmp/compile-cache.ts
# Numeric, so Kubernetes can verify runAsNonRoot (uid 1000 is the image's "node" user).
USER 1000
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.PORT+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "server.mjs"]
