/** The Fastify application: probes for Kubernetes, metrics for Prometheus. */
import type { Logger } from "@repo/logger";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from "fastify";

import { HttpMetrics } from "./metrics.js";

/** Ready only between the end of start-up and the beginning of shutdown. */
export class Lifecycle {
  started = false;
  stopping = false;

  get ready(): boolean {
    return this.started && !this.stopping;
  }
}

/** The route's template labels a request (`/items/:id`, never `/items/42`). */
function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? "unmatched";
}

/** One access log line per request, when its response is sent, instead of Fastify's two. */
export class AccessLog extends LogController {
  override incomingRequest(): void {
    // Nothing yet: the line written on completion says all.
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const entry = {
      method: request.method,
      // Without the query string, which may carry tokens.
      path: request.url.split("?", 1)[0],
      route: routeOf(request),
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
    };
    if (error) {
      request.log.error({ ...entry, err: error }, "request failed");
    } else {
      request.log.info(entry, "request completed");
    }
  }
}

/** The app, typed with the logger it was given. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  Logger
>;

export interface AppOptions {
  logger: Logger;
  lifecycle?: Lifecycle;
  metrics?: HttpMetrics;
}

export function buildApp({
  logger,
  lifecycle = new Lifecycle(),
  metrics = new HttpMetrics(),
}: AppOptions): App {
  const app = Fastify({ loggerInstance: logger, logController: new AccessLog() });

  app.addHook("onReady", () => {
    lifecycle.started = true;
    return Promise.resolve();
  });
  app.addHook("preClose", () => {
    lifecycle.stopping = true;
    return Promise.resolve();
  });

  app.addHook("onSend", (_request, reply, payload) => {
    // While stopping, close each connection after its response, so that clients reconnect to
    // another pod and the server does not wait for idle keep-alive connections.
    if (lifecycle.stopping) {
      void reply.header("connection", "close");
    }
    return Promise.resolve(payload);
  });

  app.addHook("onResponse", (request, reply) => {
    metrics.observe(request.method, routeOf(request), reply.statusCode, reply.elapsedTime / 1000);
    return Promise.resolve();
  });

  /** Liveness: the process is up and serving requests. */
  app.get("/healthz", () => ({ status: "ok" }));

  /** Readiness: started and not shutting down, so it may receive traffic. */
  app.get("/readyz", (_request, reply) => {
    if (lifecycle.ready) {
      return { status: "ready" };
    }
    return reply.code(503).send({ status: "not ready" });
  });

  app.get("/metrics", async (_request, reply) => {
    return reply.type(metrics.contentType).send(await metrics.render());
  });

  return app;
}
