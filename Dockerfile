# Weir engine + gateway image (used by docker-compose.yml as service `weir`).

# Sources without local build output, caches and host node_modules (works with or without a .dockerignore).
FROM node:20-slim AS src
COPY . /src
RUN rm -rf /src/node_modules /src/dist /src/.weir /src/coverage /src/.git

FROM node:20-slim
WORKDIR /app

# Dependencies first, for layer caching (dev dependencies are needed: the build runs tsc).
COPY package.json package-lock.json ./
RUN npm ci --include=dev --no-audit --no-fund

COPY --from=src /src/ ./
RUN npm run build

EXPOSE 8080 50051
CMD ["npm", "start"]
