# One image for the worker and the API: `batchflow worker` or `batchflow api`.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# tsx runs the TypeScript sources; no build step. Dev tools (eslint, tsc) stay out of the image.
RUN npm ci --omit=dev && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY tsconfig.json ./
USER node
ENTRYPOINT ["node", "bin/batchflow.js"]
CMD ["worker"]
